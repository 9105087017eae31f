export {
  setUpIsolation,
  type Isolation,
  type IsolationMode,
  type IsolationSettings,
} from './set-up.js';
export type { RunBox } from './box.js';
export { IsolationError } from './errors.js';
export { endLease, leasesOf } from './uid-pool.js';
export { signalUid } from './tools.js';
export { removeFilesOf } from './shared-temp.js';
