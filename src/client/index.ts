export {
  createClient,
  DEFAULT_JOB_OPTIONS,
  type ClaudeboxClient,
  type ClientOptions,
  type CancelOutcome,
} from './client.js';
export { ClaudeboxError } from './errors.js';
export type { EventsOptions } from './event-stream.js';
export type { StoredPatch } from '../redis/patches.js';
