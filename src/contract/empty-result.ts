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
    startedAt: new Date(fields.startedAt).toISOString(),
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
