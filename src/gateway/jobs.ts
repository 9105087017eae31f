import type { Job, Queue } from 'bullmq';
import { z } from 'zod';
import { finishedResult } from '../client/job-result.js';
import { readRunState, type ExecuteResult, type RunState } from '../contract/index.js';

export const JOB_STATES = [
  'active',
  'waiting',
  'prioritized',
  'delayed',
  'waiting-children',
  'completed',
  'failed',
] as const;

/** How much of the prompt a list shows. */
const PROMPT_PREVIEW = 200;

/**
 * The furthest a list pages back: each page reads the newest `cursor + limit` jobs of every
 * state, so a cursor without a bound would have one request load every job Redis keeps.
 */
export const MAX_CURSOR = 1000;

export const ListQuerySchema = z.object({
  state: z.enum(JOB_STATES, { error: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,6}$/, 'must be a cursor from an earlier page')
    .transform(Number)
    .pipe(
      z.number().max(MAX_CURSOR, `must be at most ${MAX_CURSOR}: a list reaches no further back`),
    )
    .default(0),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100, 'must be at most 100')
    .default(20),
});
export type ListQuery = z.output<typeof ListQuerySchema>;

/** A job as a list shows it: enough to pick one, not its output. */
export interface JobSummary {
  readonly jobId: string;
  readonly state: string;
  readonly createdAt: string;
  /** When a worker first took the job; null while none has. */
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  /** The attempt running now or last run; null before the first. */
  readonly attempt: number | null;
  readonly prompt: string | null;
  readonly success: boolean | null;
  readonly failure: string | null;
  readonly costUsd: number | null;
  readonly durationMs: number | null;
}

/** A job in full: its request, its run state, and its ExecuteResult once it finished. */
export interface JobDetail extends JobSummary {
  readonly request: unknown;
  readonly runState: RunState | null;
  readonly result: ExecuteResult | null;
}

export async function readJob(queue: Queue, jobId: string): Promise<JobDetail | null> {
  // State first, the job after (see the client's result): a job ending in between stays whole.
  const state = await queue.getJobState(jobId);
  const job = await queue.getJob(jobId);
  if (state === 'unknown' || !job) return null;
  const result = finishedResult(job, state);
  return {
    ...summarize(job, state, result),
    prompt: promptOf(job, Infinity),
    request: job.data,
    runState: readRunState(job.progress),
    result,
  };
}

/**
 * A page of jobs, newest (by creation) first: the newest `cursor + limit` of each state asked
 * for, merged. The cursor is an offset, so a page may repeat a job when new ones came meanwhile;
 * no page follows one that ends past MAX_CURSOR.
 */
export async function listJobs(
  queue: Queue,
  { state, cursor, limit }: ListQuery,
): Promise<{ jobs: JobSummary[]; nextCursor: string | null }> {
  const states = state === undefined ? JOB_STATES : [state];
  const perState = await Promise.all(
    states.map(async (name) => {
      // A job removed between BullMQ's two reads comes back as undefined, whatever its type says.
      const jobs = (await queue.getJobs([name], 0, cursor + limit, false)) as (Job | undefined)[];
      return jobs.filter((job): job is Job => job !== undefined).map((job) => ({ job, name }));
    }),
  );
  const all = perState.flat().sort((a, b) => b.job.timestamp - a.job.timestamp);
  const page = all.slice(cursor, cursor + limit);
  return {
    jobs: page.map(({ job, name }) => summarize(job, name, finishedResult(job, name))),
    nextCursor:
      all.length > cursor + limit && cursor + limit <= MAX_CURSOR ? String(cursor + limit) : null,
  };
}

function summarize(job: Job, state: string, result: ExecuteResult | null): JobSummary {
  return {
    jobId: job.id ?? '',
    state,
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: isoOrNull(job.processedOn),
    finishedAt: isoOrNull(job.finishedOn),
    attempt: readRunState(job.progress)?.attempt ?? null,
    prompt: promptOf(job, PROMPT_PREVIEW),
    success: result?.success ?? null,
    failure: result?.failure ?? null,
    costUsd: result?.costUsd ?? null,
    durationMs: result?.durationMs ?? null,
  };
}

function promptOf(job: Job, length: number): string | null {
  const data = job.data as { prompt?: unknown } | null;
  return typeof data?.prompt === 'string' ? data.prompt.slice(0, length) : null;
}

function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined || ms === 0 ? null : new Date(ms).toISOString();
}
