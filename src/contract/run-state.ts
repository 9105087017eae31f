import { z } from 'zod';
import { ExecuteResultSchema } from './result.js';

/**
 * What the worker keeps on the job itself, as BullMQ's `job.progress`: it survives retries,
 * so every attempt knows the session to continue and where the event numbering stands, and a
 * failed job still carries its ExecuteResult (`job.progress.result`).
 */
export const RunStateSchema = z.object({
  /** The attempt running now, or the last one that ran. */
  attempt: z.int().positive(),
  /** The Claude session every attempt of this job continues (null with SESSION_STORE=off). */
  sessionId: z.string().nullable(),
  /** Size of the session transcript before this job first ran (non-zero when it resumed one). */
  transcriptBaseline: z.int().nonnegative(),
  /** seq of the last event the worker had published when it last wrote this state. */
  lastSeq: z.int().nonnegative(),
  /** pid of the CLI of the attempt running now (null before it started, or after). */
  pid: z.int().nullable(),
  /** The ExecuteResult of the latest attempt that finished. */
  result: ExecuteResultSchema.nullable(),
  /**
   * Rate-limited (429) and overloaded (529) ends so far: `delays` delayed retries (bounded by
   * MAX_RATE_LIMIT_DELAYS), of which `attemptsSpent` (the 529s) count as attempts, as BullMQ
   * does not count a delayed retry.
   */
  rateLimit: z
    .object({ delays: z.int().nonnegative(), attemptsSpent: z.int().nonnegative() })
    .optional(),
});

export type RunState = z.infer<typeof RunStateSchema>;

/** The run state in a job's progress, or null when there is none (a job not yet started). */
export function readRunState(progress: unknown): RunState | null {
  const parsed = RunStateSchema.safeParse(progress);
  return parsed.success ? parsed.data : null;
}
