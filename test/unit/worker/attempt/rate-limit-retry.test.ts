import { describe, expect, it } from 'vitest';
import {
  BACKOFF_FIRST_MS,
  BACKOFF_MAX_MS,
  NO_RATE_LIMITS,
  planRateLimitRetry,
  rateLimitDelayMs,
} from '../../../../src/worker/attempt/rate-limit-retry.js';

const NOW = 1_700_000_000_000;

describe('the delayed retry of a rate-limited job', () => {
  it('waits what the API asked, when the CLI told it', () => {
    expect(rateLimitDelayMs({ status: 429, retryAfterMs: 3_400 }, 0)).toBe(3_400);
    // Never a busy loop on a zero, never a wait of days on a strange header.
    expect(rateLimitDelayMs({ status: 429, retryAfterMs: 0 }, 0)).toBe(1_000);
    expect(rateLimitDelayMs({ status: 429, retryAfterMs: 9e9 }, 0)).toBe(3_600_000);
  });

  it('backs off from 5 s, doubling, at most 5 min, when the API said nothing', () => {
    const delays = [0, 1, 2, 3, 6, 7, 20].map((n) =>
      rateLimitDelayMs({ status: 529, retryAfterMs: null }, n),
    );
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000, 300_000, 300_000, 300_000]);
    expect(delays[0]).toBe(BACKOFF_FIRST_MS);
    expect(Math.max(...delays)).toBe(BACKOFF_MAX_MS);
  });

  it('spends no attempt on a 429, even with none left, and counts the delay', () => {
    expect(
      planRateLimitRetry({
        hit: { status: 429, retryAfterMs: 3_000 },
        count: NO_RATE_LIMITS,
        maxDelays: 5,
        attemptLeft: false,
        now: NOW,
      }),
    ).toEqual({
      retryAt: NOW + 3_000,
      spendsAttempt: false,
      count: { delays: 1, attemptsSpent: 0 },
    });
  });

  it('spends an attempt on a 529, so with none left the job fails', () => {
    const plan = (attemptLeft: boolean) =>
      planRateLimitRetry({
        hit: { status: 529, retryAfterMs: null },
        count: { delays: 2, attemptsSpent: 1 },
        maxDelays: 5,
        attemptLeft,
        now: NOW,
      });
    expect(plan(true)).toEqual({
      retryAt: NOW + 20_000,
      spendsAttempt: true,
      count: { delays: 3, attemptsSpent: 2 },
    });
    expect(plan(false)).toBeNull();
  });

  it('gives up once the job was delayed MAX_RATE_LIMIT_DELAYS times (0: never delays)', () => {
    const plan = (delays: number, maxDelays: number) =>
      planRateLimitRetry({
        hit: { status: 429, retryAfterMs: 1_000 },
        count: { delays, attemptsSpent: 0 },
        maxDelays,
        attemptLeft: true,
        now: NOW,
      });
    expect(plan(4, 5)).not.toBeNull();
    expect(plan(5, 5)).toBeNull();
    expect(plan(0, 0)).toBeNull();
  });
});
