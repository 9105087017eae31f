export { Workspaces, type WorkspaceSettings } from './workspaces.js';
export { Checkout, type Change, type Hold } from './checkout.js';
export { GitError } from './git.js';
export { sourceRefusal } from './sources.js';
