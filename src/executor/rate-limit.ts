import type { RunOutcome } from './run.js';

/** The API's answers that mean "not now": rate limited, overloaded. */
export const RATE_LIMIT_STATUSES = [429, 529] as const;
export type RateLimitStatus = (typeof RATE_LIMIT_STATUSES)[number];

/** A run that ended because the API would not serve it now. */
export interface RateLimitHit {
  readonly status: RateLimitStatus;
  /**
   * How long the API asked to wait, as the CLI last reported it (`retry_delay_ms` of its latest
   * `api_retry` line for the same status); null when the CLI said nothing of it.
   */
  readonly retryAfterMs: number | null;
}

// How the CLI words these errors on stderr, for a run that printed no result line: a status and
// a word for it, in either order. Two searches, not one pattern with `.*` between them, which
// scans the rest of the line again from each status a line of megabytes names.
const STDERR_STATUS = /\b(429|529)\b/;
const STDERR_WORDS = /\b(rate.?limit|overload)/i;

const isRateLimitStatus = (status: number | null | undefined): status is RateLimitStatus =>
  status === 429 || status === 529;

/**
 * Whether a run that did not succeed ended on a 429 or a 529. The result line's
 * `api_error_status` decides when there is one; without a result line, the CLI's latest
 * `api_retry` line (a run stopped while the CLI was retrying), else its last stderr line.
 */
export function rateLimitHit(outcome: RunOutcome): RateLimitHit | null {
  const { resultLine, lastApiRetry } = outcome.summary;
  if (resultLine !== null && !resultLine.isError) return null;
  const status = endingStatus(outcome);
  if (!isRateLimitStatus(status)) return null;
  const retryAfterMs =
    lastApiRetry !== null && lastApiRetry.status === status && lastApiRetry.delayMs !== null
      ? Math.max(0, lastApiRetry.delayMs)
      : null;
  return { status, retryAfterMs };
}

function endingStatus(outcome: RunOutcome): number | null {
  const { resultLine, lastApiRetry } = outcome.summary;
  if (resultLine?.apiErrorStatus != null) return resultLine.apiErrorStatus;
  // A result line that names no status ended on something else: an earlier retry that the CLI
  // got over (a 429 at turn 2, then error_max_turns) is not why the run ended.
  if (resultLine !== null) return null;
  if (lastApiRetry?.status != null) return lastApiRetry.status;
  if (outcome.lastStderr === null) return null;
  const digits = STDERR_STATUS.exec(outcome.lastStderr)?.[1];
  if (digits === undefined || !STDERR_WORDS.test(outcome.lastStderr)) return null;
  return Number(digits);
}
