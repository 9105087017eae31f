export * from './request.js';
export * from './result.js';
export * from './events.js';
export { describeIssues } from './issues.js';

/** The version of the job data / events / result contract this package speaks. */
export const CONTRACT_VERSION = 1;
export * from './keys.js';
