import type { Job, JobType, Queue } from 'bullmq';
import { z } from 'zod';
import { finishedResult } from '../client/job-result.js';
import type { RedisClient } from '../redis/connections.js';
import {
  describeIssues,
  readRunState,
  type ExecuteResult,
  type RunState,
} from '../contract/index.js';

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
 * The furthest a list pages back: a page reads the newest `cursor + limit` completed and failed
 * jobs, so a cursor without a bound would have one request load every job Redis keeps.
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
  limit: z
    .string()
    .regex(/^\d{1,6}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(1, 'must be at least 1').max(100, 'must be at most 100'))
    .default(20),
});

/**
 * The query of GET /jobs, or what is wrong with it: each parameter is given once, as a second
 * value would go unread.
 */
export function parseListQuery(query: Record<string, readonly string[]>): ListQuery | string {
  const repeated = Object.keys(query).find((name) => (query[name]?.length ?? 0) > 1);
  if (repeated !== undefined) return `${repeated}: must be given once`;
  const single = Object.fromEntries(Object.entries(query).map(([name, [value]]) => [name, value]));
  const parsed = ListQuerySchema.safeParse(single);
  return parsed.success ? parsed.data : describeIssues(parsed.error);
}
export type ListQuery = z.output<typeof ListQuerySchema>;

/** A job as a list shows it: enough to pick one, not its output. */
export interface JobSummary {
  readonly jobId: string;
  readonly state: string;
  readonly createdAt: string | null;
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
  // Not a job: a name of another key of the queue (`<id>:logs`) would fail getJob's HGETALL.
  if (state === 'unknown') return null;
  const job = await queue.getJob(jobId);
  if (!job) return null;
  const result = finishedResult(job, state);
  return {
    ...summarize(job, state, result),
    prompt: promptOf(job, Infinity),
    request: job.data,
    runState: readRunState(job.progress),
    result,
  };
}

/** States of jobs not finished yet, listed first, in this order. */
const UNFINISHED: readonly JobType[] = [
  'active',
  'waiting',
  'prioritized',
  'delayed',
  'waiting-children',
];

/**
 * A page of jobs: those not finished yet first, state by state (UNFINISHED), each state in
 * BullMQ's own order; then the finished ones, completed and failed together, the most recently
 * finished first. BullMQ keeps the completed and the failed ordered by when they finished, so
 * the ids of their newest `cursor + limit` merged by that time are exactly the newest of both,
 * and only the page's jobs of them are read; the other states are read for the page's own part
 * of them alone. The cursor is an offset, so a page may repeat or miss a job that changed state
 * meanwhile; no page follows one that ends past MAX_CURSOR.
 */
export async function listJobs(
  queue: Queue,
  redis: RedisClient,
  { state, cursor, limit }: ListQuery,
): Promise<{ jobs: JobSummary[]; nextCursor: string | null }> {
  const states: readonly JobType[] = state === undefined ? JOB_STATES : [state];
  const end = cursor + limit;
  const counts = await queue.getJobCounts(...states);
  const picked: { job: Job; name: string }[] = [];
  let offset = 0;
  for (const name of states.filter((name) => UNFINISHED.includes(name))) {
    const count = counts[name] ?? 0;
    const from = Math.max(cursor - offset, 0);
    const to = Math.min(end - offset, count);
    if (from < to) picked.push(...(await jobsOf(queue, name, from, to)));
    offset += count;
  }
  const finished = states.filter((name) => !UNFINISHED.includes(name));
  if (end > offset && finished.length > 0) {
    const newest = await newestFinished(queue, redis, finished, end - offset);
    const page = newest.slice(Math.max(cursor - offset, 0), end - offset);
    picked.push(...(await jobsNamed(queue, page)));
  }
  const total = states.reduce((sum, name) => sum + (counts[name] ?? 0), 0);
  return {
    jobs: picked.map(({ job, name }) => summarize(job, name, finishedResult(job, name))),
    nextCursor: total > end && end <= MAX_CURSOR ? String(end) : null,
  };
}

/** Jobs that wait their turn in an order of their own: listed as they will run, next first. */
const IN_TURN: readonly JobType[] = ['prioritized', 'delayed'];

/**
 * Jobs [from, to) of one state: the newest first, but the prioritized by priority and the
 * delayed by when they are due.
 */
async function jobsOf(queue: Queue, name: JobType, from: number, to: number) {
  const asc = IN_TURN.includes(name);
  // A job removed between BullMQ's two reads comes back as undefined, whatever its type says.
  const jobs = (await queue.getJobs([name], from, to - 1, asc)) as (Job | undefined)[];
  return jobs.filter((job): job is Job => job !== undefined).map((job) => ({ job, name }));
}

/**
 * The ids of the newest `count` jobs of each finished state, merged, most recently finished
 * first: BullMQ's sorted sets of them are scored by that time. Ids alone: a job can hold
 * megabytes (its prompt, its result), and a page deep in the list is a few of many.
 */
async function newestFinished(
  queue: Queue,
  redis: RedisClient,
  names: readonly JobType[],
  count: number,
): Promise<{ id: string; name: JobType; at: number }[]> {
  const lists = await Promise.all(
    names.map(async (name) => {
      const flat = await redis.zrevrange(queue.toKey(name), 0, count - 1, 'WITHSCORES');
      const listed: { id: string; name: JobType; at: number }[] = [];
      for (let at = 0; at + 1 < flat.length; at += 2) {
        listed.push({ id: flat[at] ?? '', name, at: Number(flat[at + 1]) });
      }
      return listed;
    }),
  );
  return lists.flat().sort((a, b) => b.at - a.at);
}

/** The jobs of these ids, in order; one removed meanwhile is left out. */
async function jobsNamed(queue: Queue, listed: readonly { id: string; name: JobType }[]) {
  const jobs = await Promise.all(listed.map(({ id }) => queue.getJob(id)));
  return listed.flatMap(({ name }, at) => {
    const job = jobs[at] as Job | undefined;
    return job === undefined ? [] : [{ job, name }];
  });
}

function summarize(job: Job, state: string, result: ExecuteResult | null): JobSummary {
  return {
    jobId: job.id ?? '',
    state,
    createdAt: isoOrNull(job.timestamp),
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

/** A time of the job's, or null where it has none a date can be made of (0, or not a number). */
function isoOrNull(ms: number | undefined): string | null {
  const date = new Date(ms ?? NaN);
  return ms === 0 || Number.isNaN(date.getTime()) ? null : date.toISOString();
}
