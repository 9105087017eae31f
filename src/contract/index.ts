export * from './request.js';
export * from './result.js';
export * from './events.js';
export * from './keys.js';
export * from './history-entry.js';
export * from './run-state.js';
export * from './control.js';
export * from './read-token.js';
export { resultWithoutRun } from './empty-result.js';
export { describeIssues } from './issues.js';
export {
  compileJsonSchema,
  describeViolations,
  SCHEMA_CHECKER_OPTIONS,
  type CompiledSchema,
  type SchemaViolation,
} from './json-schema.js';

/** The version of the job data / events / result contract this package speaks. */
export const CONTRACT_VERSION = 3;
