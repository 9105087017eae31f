import { flattenLines } from '../common/text.js';
import type { ExecuteResult, FailureKind } from '../contract/index.js';
import { rateLimitHit, type RateLimitHit } from './rate-limit.js';
import type { RunOutcome } from './run.js';

/** The part of an ExecuteResult that one run of the CLI decides. */
export type RunReport = Omit<
  ExecuteResult,
  | 'jobId'
  | 'attempt'
  | 'lastSeq'
  | 'retrying'
  | 'retryAt'
  | 'resumed'
  | 'sessionId'
  | 'jobCostUsd'
  | 'workspace'
> & {
  readonly streamSessionId: string | null;
  /** Set when the run ended on a 429 or 529 (`failure: 'rate-limited'`). */
  readonly rateLimit: RateLimitHit | null;
  /** The size, as JSON, of a structured answer over its cap, which was not kept. */
  readonly structuredOutputDroppedBytes: number | null;
};

/** The result line's subtype when the run reached --max-budget-usd. */
export const BUDGET_SUBTYPE = 'error_max_budget_usd';

const MAX_ERROR_CHARS = 1000;

/** One line: what went wrong, in the CLI's own words where it gave any. */
export function oneLine(text: string): string {
  const flat = flattenLines(text).trim();
  return flat.length > MAX_ERROR_CHARS ? `${flat.slice(0, MAX_ERROR_CHARS - 3)}...` : flat;
}

/**
 * Judges a run. Success needs exit code 0 AND a result line with is_error false: the CLI exits
 * 1 with is_error true on API errors, and a run that printed no result line did not succeed.
 */
export function judgeRun(outcome: RunOutcome, timeoutMs: number): RunReport {
  const result = outcome.summary.resultLine;
  const ended = classify(outcome, timeoutMs);
  // A 429 or 529 ends the run as a CLI error would; it is told apart to be retried later.
  const rateLimit = ended?.kind === 'cli-error' ? rateLimitHit(outcome) : null;
  const failure =
    ended !== null && rateLimit !== null ? { ...ended, kind: 'rate-limited' as const } : ended;
  return {
    success: failure === null,
    failure: failure?.kind ?? null,
    error: failure ? oneLine(failure.message) : null,
    exitCode: outcome.exitCode,
    signal: outcome.signal,
    timedOut: outcome.stoppedBy === 'timeout',
    cancelled: outcome.stoppedBy === 'cancelled',
    stoppedAfterResult: outcome.stoppedBy === 'after-result',
    startedAt: new Date(outcome.startedAt).toISOString(),
    durationMs: outcome.durationMs,
    streamSessionId: outcome.summary.sessionId,
    finalOutput: result?.result ?? null,
    finalOutputTruncated: result?.resultTruncated ?? false,
    output: outcome.output.text,
    outputTruncated: outcome.output.truncated,
    outputBytes: outcome.output.bytes,
    resultSubtype: result?.subtype ?? null,
    isError: result ? result.isError : null,
    costUsd: result?.costUsd ?? null,
    numTurns: result?.numTurns ?? null,
    usage: result?.usage ?? null,
    permissionDenials: [...(result?.permissionDenials ?? [])],
    permissionDenialsOmitted: result?.permissionDenialsOmitted ?? 0,
    apiErrorStatus: result?.apiErrorStatus ?? null,
    structuredOutput: result?.structuredOutput ?? null,
    structuredOutputDroppedBytes: result?.structuredOutputDroppedBytes ?? null,
    rateLimit,
  };
}

function classify(
  run: RunOutcome,
  timeoutMs: number,
): { kind: FailureKind; message: string } | null {
  const result = run.summary.resultLine;
  if (run.spawnError !== null) return { kind: 'spawn-failed', message: run.spawnError };
  const how = run.forced ? '; it ignored SIGINT and was killed' : '';
  switch (run.stoppedBy) {
    case 'timeout':
      return { kind: 'timeout', message: `timed out after ${seconds(timeoutMs)}${how}` };
    case 'cancelled':
      return { kind: 'cancelled', message: `cancelled: ${run.stopMessage ?? 'no reason given'}` };
    case 'shutdown':
      return { kind: 'shutdown', message: run.stopMessage ?? 'stopped: the worker shut down' };
    case 'abandoned':
      return {
        kind: 'abandoned',
        message: run.stopMessage ?? 'stopped: the job is no longer ours',
      };
    case 'stdout-closed':
      return { kind: 'cli-error', message: `claude closed its stdout but kept running${how}` };
    case 'idle':
      return { kind: 'idle', message: `idle: ${run.stopMessage ?? 'it went silent'}${how}` };
    // Stopped for not exiting after its result: the result line alone says how it went.
    case 'after-result':
    case null:
      break;
  }
  const status = run.signal ? `was killed by ${run.signal}` : `exited with code ${run.exitCode}`;
  if (result && result.isError) {
    const said = result.result ?? (result.errors.join('; ') || '(no error text)');
    const what = result.subtype && result.subtype !== 'success' ? ` ${result.subtype}` : '';
    // The job's budget stopped the run: a retry would find no more of it to spend.
    const kind = result.subtype === BUDGET_SUBTYPE ? 'budget' : 'cli-error';
    return { kind, message: `claude reported an error${what} (${status}): ${said}` };
  }
  if (result && (run.exitCode === 0 || run.stoppedBy === 'after-result')) return null;
  if (result) return { kind: 'cli-error', message: `claude ${status}` };
  return { kind: 'cli-error', message: `claude ${status} without a result line${detail(run)}` };
}

function detail(run: RunOutcome): string {
  const { summary } = run;
  const parts: string[] = [];
  if (summary.lines === 0) parts.push('it printed nothing on stdout');
  if (summary.firstNonJson !== null) {
    parts.push(
      `${summary.nonJsonLines} stdout line(s) were not JSON, the first: ${JSON.stringify(summary.firstNonJson)}`,
    );
  }
  if (summary.invalidUtf8Lines > 0) {
    parts.push(`${summary.invalidUtf8Lines} stdout line(s) were not valid UTF-8`);
  }
  if (summary.overlongLines > 0) {
    parts.push(
      `${summary.overlongLines} stdout line(s) were longer than MAX_LINE_BYTES, too long to read (the result line may be one)`,
    );
  }
  if (run.lastStderr !== null) parts.push(`last stderr line: ${JSON.stringify(run.lastStderr)}`);
  return parts.length > 0 ? `; ${parts.join('; ')}` : '';
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}
