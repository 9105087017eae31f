import type { ExecuteResult, FailureKind } from './result.js';

/** The ExecuteResult of an attempt that ended before any process ran (or that nobody saw end). */
export function resultWithoutRun(fields: {
  readonly jobId: string;
  readonly attempt: number;
  readonly failure: FailureKind;
  readonly error: string;
  readonly sessionId: string | null;
  readonly retrying: boolean;
  readonly startedAt: number;
  /** What the job's earlier attempts spent; null (the default) when none reported a cost. */
  readonly jobCostUsd?: number | null;
}): Omit<ExecuteResult, 'lastSeq'> {
  return {
    jobId: fields.jobId,
    attempt: fields.attempt,
    success: false,
    failure: fields.failure,
    error: fields.error,
    exitCode: null,
    signal: null,
    timedOut: false,
    cancelled: fields.failure === 'cancelled',
    stoppedAfterResult: false,
    startedAt: isoTime(fields.startedAt),
    durationMs: 0,
    sessionId: fields.sessionId,
    resumed: false,
    finalOutput: null,
    finalOutputTruncated: false,
    output: '',
    outputTruncated: false,
    outputBytes: 0,
    resultSubtype: null,
    isError: null,
    costUsd: null,
    numTurns: null,
    usage: null,
    permissionDenials: [],
    permissionDenialsOmitted: 0,
    apiErrorStatus: null,
    jobCostUsd: fields.jobCostUsd ?? null,
    structuredOutput: null,
    retrying: fields.retrying,
    retryAt: null,
    workspace: null,
  };
}

/**
 * A time in ms as ISO 8601; the epoch's where it is no time (a job written by something other
 * than BullMQ, without a timestamp or with one past the year 275760), which a Date cannot show.
 */
function isoTime(ms: number): string {
  const at = new Date(ms);
  return Number.isNaN(at.getTime()) ? new Date(0).toISOString() : at.toISOString();
}
