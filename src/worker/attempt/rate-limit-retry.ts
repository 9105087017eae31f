import type { RunState } from '../../contract/index.js';
import type { RateLimitHit } from '../../executor/index.js';

/** How many rate-limited ends a job had, kept in its run state across attempts. */
export type RateLimitCount = NonNullable<RunState['rateLimit']>;

export const NO_RATE_LIMITS: RateLimitCount = { delays: 0, attemptsSpent: 0 };

/** Without a retry-after from the API: 5 s, doubling with every delay, at most 5 min. */
export const BACKOFF_FIRST_MS = 5_000;
export const BACKOFF_MAX_MS = 300_000;
/** A retry-after is followed, but never sooner than this nor later than this. */
const RETRY_AFTER_MIN_MS = 1_000;
const RETRY_AFTER_MAX_MS = 3_600_000;

/** The delayed retry of a job whose run ended on a 429 or 529. */
export interface RateLimitRetry {
  /** When the next attempt may start (ms since the epoch). */
  readonly retryAt: number;
  /** A 529 spends an attempt; a 429 (the API asked us to slow down) does not. */
  readonly spendsAttempt: boolean;
  /** The job's count, this delay included. */
  readonly count: RateLimitCount;
}

/** How long to wait before the next attempt: the API's retry-after, else the backoff. */
export function rateLimitDelayMs(hit: RateLimitHit, delaysSoFar: number): number {
  if (hit.retryAfterMs !== null) {
    return Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, hit.retryAfterMs));
  }
  return Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** delaysSoFar);
}

/**
 * The delayed retry a rate-limited run earns, or null when the job is to fail for good: it
 * had MAX_RATE_LIMIT_DELAYS of them already, or a 529 finds no attempt left.
 */
export function planRateLimitRetry(options: {
  readonly hit: RateLimitHit;
  readonly count: RateLimitCount;
  readonly maxDelays: number;
  /** Whether the job has an attempt left after this one (BullMQ's count and ours). */
  readonly attemptLeft: boolean;
  readonly now: number;
}): RateLimitRetry | null {
  const { hit, count } = options;
  if (count.delays >= options.maxDelays) return null;
  const spendsAttempt = hit.status === 529;
  if (spendsAttempt && !options.attemptLeft) return null;
  return {
    retryAt: options.now + rateLimitDelayMs(hit, count.delays),
    spendsAttempt,
    count: {
      delays: count.delays + 1,
      attemptsSpent: count.attemptsSpent + (spendsAttempt ? 1 : 0),
    },
  };
}
