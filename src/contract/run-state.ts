import { z } from 'zod';
import { ExecuteResultSchema, type ExecuteResult } from './result.js';

/**
 * What a job's attempts spent, kept across attempts for its maxBudgetUsd and jobCostUsd. On
 * --resume the CLI's total_cost_usd is the session's cumulative cost (earlier processes
 * included), so an attempt's spend is its total_cost_usd less the session's cost before it.
 */
export const SpendingSchema = z.object({
  /** What every attempt of the job spent, as far as the CLI reported it; null before any did. */
  jobCostUsd: z.number().nonnegative().nullable(),
  /** The session whose cumulative cost is known: the one the next attempt resumes. */
  sessionId: z.string().nullable(),
  /**
   * That session's total_cost_usd at the end of the latest attempt that reported one; 0 for a
   * session this job started; null when unknown (a session resumed from elsewhere).
   */
  sessionCostUsd: z.number().nonnegative().nullable(),
});

export type Spending = z.infer<typeof SpendingSchema>;

/**
 * What the worker keeps on the job itself, as BullMQ's `job.progress`: it survives retries,
 * so every attempt knows the session to continue and where the event numbering stands, and a
 * failed job still carries its ExecuteResult (`job.progress.result`). Since contract version 2
 * that result holds its `output` only when it is the job's failure: a completed job's return
 * value has it, and every attempt's output is in the job's history.
 */
export const RunStateSchema = z.object({
  /** The attempt running now, or the last one that ran. */
  attempt: z.int().positive(),
  /**
   * The Claude session every attempt of this job continues (null with SESSION_STORE=off). A
   * UUID, as a request's resumeSessionId: it names the session's transcript files on disk.
   */
  sessionId: z.uuid().nullable(),
  /** Size of the session transcript before this job first ran (non-zero when it resumed one). */
  transcriptBaseline: z.int().nonnegative(),
  /**
   * For a job that forked a session: the id of the last entry it copied, after which the job's
   * own part of the fork's transcript begins. Absent otherwise.
   */
  forkedAfter: z.uuid().optional(),
  /** seq of the last event the worker had published when it last wrote this state. */
  lastSeq: z.int().nonnegative(),
  /** pid of the CLI of the attempt running now (null before it started, or after). */
  pid: z.int().nullable(),
  /**
   * The ExecuteResult of the latest attempt that finished; its `output` is `''` unless the
   * worker wrote it as the job's failure.
   */
  result: ExecuteResultSchema.nullable(),
  /** Absent on jobs that began before workers kept it: their cost so far is unknown. */
  spending: SpendingSchema.optional(),
  /**
   * Rate-limited (429) and overloaded (529) ends so far: `delays` delayed retries (bounded by
   * MAX_RATE_LIMIT_DELAYS), of which `attemptsSpent` (the 529s) count as attempts, as BullMQ
   * does not count a delayed retry.
   */
  rateLimit: z
    .object({ delays: z.int().nonnegative(), attemptsSpent: z.int().nonnegative() })
    .optional(),
  /**
   * BullMQ's stall count of the job when an attempt recorded `result` as the job's end for good:
   * a start after a later stall finds the job over already, and ends it with that result.
   */
  endedAtStall: z.int().nonnegative().optional(),
});

export type RunState = z.infer<typeof RunStateSchema>;

/**
 * A session id as a run state keeps it: a UUID, else none. What a CLI printed as its session id
 * is kept only so, lest a state the next attempt cannot read lose what the job spent.
 */
export function storedSessionId(sessionId: string | null): string | null {
  return sessionId !== null && RunStateSchema.shape.sessionId.safeParse(sessionId).success
    ? sessionId
    : null;
}

/** A transcript entry's id as a run state keeps it (`forkedAfter`): a UUID, else none. */
export function storedEntryId(id: string | null): string | undefined {
  return id !== null && RunStateSchema.shape.forkedAfter.safeParse(id).success ? id : undefined;
}

/** The run state in a job's progress, or null when there is none (a job not yet started). */
export function readRunState(progress: unknown): RunState | null {
  const parsed = RunStateSchema.safeParse(progress);
  return parsed.success ? parsed.data : null;
}

/**
 * The result as the run state keeps it where the output is elsewhere (a completed job's return
 * value, the history): every BullMQ progress update is stored twice, on the job and in BullMQ's
 * event stream, so it stays small.
 */
export function withoutOutput(result: ExecuteResult): ExecuteResult {
  return { ...result, output: '' };
}
