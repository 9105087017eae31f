import type { Job } from 'bullmq';
import { isTerminalEvent, type ExecuteEvent, type RunState } from '../../contract/index.js';

/** What BullMQ counts for a job, as the worker got it. */
export type AttemptCounters = Pick<
  Job,
  'attemptsStarted' | 'attemptsMade' | 'stalledCounter' | 'opts'
>;

/** Where a job's attempts stand as a worker starts it. */
export interface Attempts {
  /** The number of the attempt this start carries out (or ends, when `exhausted`). */
  readonly attempt: number;
  /**
   * Earlier attempts that never said how they ended (their workers died or lost the job), each
   * to be ended now with a terminal event of its own, oldest first. Never holds `attempt`.
   */
  readonly abandoned: readonly number[];
  /**
   * `attempt` is itself an abandoned one and no attempt is left: this start runs nothing and
   * only ends the job.
   */
  readonly exhausted: boolean;
  /** The job's `attempts` option. */
  readonly allowed: number;
  /** Whether a failure of this attempt leaves another one to retry with. */
  readonly retryOnFailure: boolean;
}

/**
 * Counts a job's attempts: every start gets a number, and a failure (BullMQ's `attemptsMade`),
 * a stall (`stalledCounter`: the worker died or lost the lock) and an overloaded API's delayed
 * retry (the run state's `rateLimit.attemptsSpent`) each spend one.
 */
export function countAttempts(
  job: AttemptCounters,
  prior: RunState | null,
  last: ExecuteEvent | null,
): Attempts {
  const allowed = Math.max(1, job.opts.attempts ?? 1);
  // A 529's delayed retry spends an attempt BullMQ does not count (see rate-limit-retry.ts).
  const spent = job.attemptsMade + job.stalledCounter + (prior?.rateLimit?.attemptsSpent ?? 0);
  const start = startNumber(job, prior);
  const unended = range(lastEnded(prior, last) + 1, start);
  const exhausted = unended.length > 0 && spent >= allowed;
  return {
    attempt: exhausted ? (unended.at(-1) ?? start) : start,
    abandoned: exhausted ? unended.slice(0, -1) : unended,
    exhausted,
    allowed,
    retryOnFailure: spent + 1 < allowed,
  };
}

/** The error of an attempt that never said how it ended. */
export function abandonedError(attempt: number): string {
  return `attempt ${attempt} was abandoned: its worker stopped or lost the job before the run ended`;
}

/** The error the job fails with when its last attempt was abandoned. */
export function outOfAttemptsError(attempt: number, allowed: number): string {
  return `${abandonedError(attempt)}; no attempts left (attempts: ${allowed})`;
}

function startNumber(job: AttemptCounters, prior: RunState | null): number {
  const result = prior?.result;
  // A job that had ended for good runs again (a retry from queue tooling): it goes on from its
  // latest attempt, as BullMQ also counted the start that only ended the job.
  if (result && !result.retrying && result.attempt === prior.attempt) return prior.attempt + 1;
  return Math.max(job.attemptsStarted, (prior?.attempt ?? 0) + 1);
}

/**
 * The latest attempt known to have ended. Any attempt after it and before this start was
 * abandoned, also one whose worker died before it published anything (BullMQ counted its start).
 */
function lastEnded(prior: RunState | null, last: ExecuteEvent | null): number {
  const fromHistory = last === null ? 0 : isTerminalEvent(last) ? last.attempt : last.attempt - 1;
  return Math.max(fromHistory, prior?.result?.attempt ?? 0);
}

/** from, from + 1, ..., to - 1. */
function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, index) => from + index);
}
