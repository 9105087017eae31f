import { describe, expect, it } from 'vitest';
import { judgeRun } from '../../../src/executor/outcome.js';
import type { RunOutcome } from '../../../src/executor/run.js';
import { StreamSummary } from '../../../src/executor/stream-summary.js';

const json = (value: unknown): string => JSON.stringify(value);

const apiRetry = (status: number | null, delayMs: number): string =>
  json({ type: 'system', subtype: 'api_retry', error_status: status, retry_delay_ms: delayMs });

const resultLine = (fields: Record<string, unknown>): string =>
  json({ type: 'result', subtype: 'success', is_error: true, result: 'API Error', ...fields });

/** A run that exited by itself after printing these stdout lines. */
function outcome(lines: readonly string[], fields: Partial<RunOutcome> = {}): RunOutcome {
  const summary = new StreamSummary();
  for (const line of lines) summary.observe(line, undefined);
  return {
    pid: 1,
    startedAt: 0,
    durationMs: 10,
    spawnError: null,
    exitCode: 1,
    signal: null,
    stoppedBy: null,
    stopMessage: null,
    forced: false,
    output: { text: lines.join('\n'), truncated: false, bytes: 0 },
    summary,
    lastStderr: null,
    leftovers: 0,
    ...fields,
  };
}

describe('telling a run that ended on a rate limit or an overloaded API', () => {
  it('takes the status from the result line, and the retry-after from the CLI’s last retry of it', () => {
    const report = judgeRun(
      outcome([apiRetry(429, 9_000), apiRetry(429, 3_600), resultLine({ api_error_status: 429 })]),
      60_000,
    );
    expect(report).toMatchObject({
      success: false,
      failure: 'rate-limited',
      apiErrorStatus: 429,
      rateLimit: { status: 429, retryAfterMs: 3_600 },
    });
    expect(report.error).toContain('API Error');
  });

  it('knows no retry-after when the CLI did not retry, or retried another error', () => {
    expect(judgeRun(outcome([resultLine({ api_error_status: 529 })]), 60_000).rateLimit).toEqual({
      status: 529,
      retryAfterMs: null,
    });
    const mixed = outcome([apiRetry(500, 2_000), resultLine({ api_error_status: 529 })]);
    expect(judgeRun(mixed, 60_000).rateLimit).toEqual({ status: 529, retryAfterMs: null });
  });

  it('goes by the CLI’s retries, then its stderr, when the run printed no status', () => {
    const noResult = outcome([apiRetry(529, 1_200)]);
    expect(judgeRun(noResult, 60_000)).toMatchObject({
      failure: 'rate-limited',
      rateLimit: { status: 529, retryAfterMs: 1_200 },
    });
    const stderr = outcome([], { lastStderr: 'API Error: 429 rate_limit_error: slow down' });
    expect(judgeRun(stderr, 60_000)).toMatchObject({
      failure: 'rate-limited',
      rateLimit: { status: 429, retryAfterMs: null },
    });
  });

  it('leaves other errors, successes and stopped runs as they were', () => {
    expect(judgeRun(outcome([resultLine({ api_error_status: 500 })]), 60_000)).toMatchObject({
      failure: 'cli-error',
      rateLimit: null,
    });
    const fine = outcome(
      [apiRetry(429, 1_000), resultLine({ is_error: false, result: 'ok', api_error_status: null })],
      { exitCode: 0 },
    );
    expect(judgeRun(fine, 60_000)).toMatchObject({ success: true, rateLimit: null });
    const timedOut = outcome([apiRetry(429, 30_000)], { stoppedBy: 'timeout', exitCode: null });
    expect(judgeRun(timedOut, 60_000)).toMatchObject({ failure: 'timeout', rateLimit: null });
    const stderr = outcome([], { lastStderr: 'fetched 429 files' });
    expect(judgeRun(stderr, 60_000).failure).toBe('cli-error');
  });

  it('does not blame a retry the CLI got over for a run that ended on something else', () => {
    const recovered = outcome([
      apiRetry(429, 2_000),
      resultLine({ subtype: 'error_max_turns', result: undefined, api_error_status: null }),
    ]);
    expect(judgeRun(recovered, 60_000)).toMatchObject({ failure: 'cli-error', rateLimit: null });
  });
});
