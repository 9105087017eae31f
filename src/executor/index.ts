export { buildArgs, NO_RUN_CONFIG, type RunConfigArgs, type SessionPlan } from './args.js';
export { buildChildEnv, RUN_MARKER, WORKER_MARKER, JOB_VARIABLE, type RunIdentity } from './env.js';
export {
  bundledBinary,
  resolveClaudeBinary,
  searchPath,
  ClaudeBinaryError,
  type ClaudeBinary,
} from './claude-bin.js';
export { runClaude, type RunSpec, type RunLine, type RunOutcome } from './run.js';
export { RunPauses } from './run-pauses.js';
export { LineSplitter } from './lines.js';
export { type StopCause, type StopRequest } from './stop-run.js';
export { judgeRun, oneLine, type RunReport } from './outcome.js';
export { judgeAnswer } from './answer.js';
export { rateLimitHit, RATE_LIMIT_STATUSES, type RateLimitHit } from './rate-limit.js';
export {
  LAUNCHER_INPUT_FD,
  LAUNCHER_REPORT_FD,
  markerConfinement,
  type Confinement,
  type Launch,
} from './confinement.js';
export {
  childrenOf,
  findRunProcesses,
  findProcessesOfUid,
  processOfUid,
  processStartTime,
  signalProcesses,
  sweepRunProcesses,
  type Marker,
  type ProcessRef,
} from './process-tree.js';
