import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  eventRate,
  jobRate,
  latencyPercentile,
  median,
  waitForJob,
  watchJob,
  type Seen,
} from './observe.js';
import { procStatusBytes, type BenchWorker, type WorkerSettings } from './processes.js';
import { cpuPerJob, type JobCpu } from './job-cpu.js';
import { jobMemory, type JobMemory } from './redis-memory.js';

/** How big each measurement is (the full run's or --quick's). */
export interface Sizes {
  readonly memoryLines: number;
  readonly eventLines: number;
  /** Floods per worker for the events/s figure, taken in turns with the other worker's. */
  readonly eventTurns: number;
  readonly jobs: number;
  readonly latencyLines: number;
  /** Runs of the latency figure per worker, taken in turns with the other worker's. */
  readonly latencyTurns: number;
  readonly floodMiB: number;
  /** The longest a jobs/s figure is measured for. */
  readonly jobSeconds: number;
  /** How long each run of a jobs/s figure lasts before it prints its lines (0: not at all). */
  readonly runMs?: number;
}

/** Every stream-json line of the event figures is this long, newline included. */
export const LINE_BYTES = 200;
export const FLOOD_LINE_BYTES = 8192;
const LATENCY_RATE = 1000;
const TWO_LINES = 'lines 0 bytes 200 rate 0';

export const prompts = {
  lines: (count: number, bytes = LINE_BYTES, rate = 0): string =>
    `lines ${count} bytes ${bytes} rate ${rate}`,
};

export type Start = (settings: WorkerSettings) => Promise<BenchWorker>;

/** Starts a worker, gives `measure` a queue of its own on it, and stops both however it ends. */
export async function withWorker<T>(
  start: Start,
  settings: WorkerSettings,
  measure: (queue: Queue, worker: BenchWorker) => Promise<T>,
): Promise<T> {
  const isolation = settings.env?.RUN_ISOLATION ?? 'default';
  const at = `${(performance.now() / 1000).toFixed(1)} s`;
  console.error(
    `${at}: ${start.name}, concurrency ${settings.concurrency}, isolation ${isolation}`,
  );
  const worker = await start(settings);
  const connection = new Redis(settings.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(settings.queueName, { connection });
  try {
    // The first jobs of a process pay for loading and compiling its code: not job overhead.
    await jobRate(queue, 4, TWO_LINES);
    return await measure(queue, worker);
  } finally {
    await queue.close();
    // BullMQ leaves a connection it was given open.
    connection.disconnect();
    await worker.stop();
  }
}

/** A running worker and its queue. */
export interface Side {
  readonly queue: Queue;
  readonly worker: BenchWorker;
}

/** Two workers at once, each with a queue of its own, for figures measured side by side. */
export function withWorkers<T>(
  first: readonly [Start, WorkerSettings],
  second: readonly [Start, WorkerSettings],
  measure: (first: Side, second: Side) => Promise<T>,
): Promise<T> {
  return withWorker(first[0], first[1], (queue, worker) =>
    withWorker(second[0], second[1], (otherQueue, otherWorker) =>
      measure({ queue, worker }, { queue: otherQueue, worker: otherWorker }),
    ),
  );
}

/** A worker's tidying up after a job it reported done, which the next run waits out. */
const SETTLE_MS = 300;
const WARM_UP_LINES = 150;

/**
 * Runs `measure` on each worker's queue `turns` times, the workers one after the other, each
 * going first in every other turn so that neither always follows the other, after a turn of
 * `warmUp` that is not counted: the code of a run gets compiled. A machine whose load drifts
 * then weighs on both alike.
 */
async function inTurns(
  queues: readonly Queue[],
  turns: number,
  warmUp: (queue: Queue) => Promise<unknown>,
  measure: (queue: Queue, index: number) => Promise<void>,
): Promise<void> {
  for (let turn = -1; turn < turns; turn++) {
    const order = [...queues.entries()];
    if (turn % 2 !== 0) order.reverse();
    for (const [index, queue] of order) {
      // A worker tidies up after a job it reported done: the next run, the other worker's,
      // must not be measured against that.
      await sleep(SETTLE_MS);
      if (turn < 0) await warmUp(queue);
      else await measure(queue, index);
    }
  }
}

/**
 * events/s of each worker: the median of `eventTurns` runs each printing `eventLines` lines as
 * fast as it can, taken in turns (see inTurns). One flood alone moves by a third from one run
 * to the next on a 2-core machine.
 */
export async function eventsPerSecondInTurns(
  redisUrl: string,
  queues: readonly Queue[],
  sizes: Pick<Sizes, 'eventLines' | 'eventTurns'>,
): Promise<number[]> {
  const rates: number[][] = queues.map(() => []);
  // init + the lines + result: each is an output event.
  const flood = (queue: Queue, lines: number) =>
    watchJob(redisUrl, queue, prompts.lines(lines), lines + 2);
  await inTurns(
    queues,
    sizes.eventTurns,
    (queue) => flood(queue, WARM_UP_LINES),
    async (queue, index) => {
      rates[index]?.push(eventRate(await flood(queue, sizes.eventLines)));
    },
  );
  return rates.map(median);
}

/**
 * Line -> subscriber latency p99 of each worker, from `latencyTurns` runs of each printing 1,000
 * lines a second (`latencyLines` in all), taken in turns (see inTurns).
 */
export async function latencyP99InTurns(
  redisUrl: string,
  queues: readonly Queue[],
  sizes: Pick<Sizes, 'latencyLines' | 'latencyTurns'>,
): Promise<number[]> {
  const lines = Math.ceil(sizes.latencyLines / sizes.latencyTurns);
  const seen: Seen[][] = queues.map(() => []);
  const paced = (queue: Queue, count: number) =>
    watchJob(redisUrl, queue, prompts.lines(count, LINE_BYTES, LATENCY_RATE), count + 2);
  await inTurns(
    queues,
    sizes.latencyTurns,
    (queue) => paced(queue, WARM_UP_LINES),
    async (queue, index) => {
      seen[index]?.push(...(await paced(queue, lines)));
    },
  );
  return seen.map((runs) => latencyPercentile(runs, 99));
}

/**
 * The jobs/s figure's jobs: `sizes.jobs` of two lines, each run lasting `sizes.runMs` first,
 * for at most `sizes.jobSeconds`.
 */
const twoLineJobs = (queue: Queue, sizes: Sizes) => {
  const prompt = sizes.runMs ? `${TWO_LINES} last ${sizes.runMs / 1000}` : TWO_LINES;
  return jobRate(queue, sizes.jobs, prompt, sizes.jobSeconds);
};

export async function jobsPerSecond(queue: Queue, sizes: Sizes): Promise<number> {
  return (await twoLineJobs(queue, sizes)).perSecond;
}

/** jobsPerSecond, and what each job cost the machine's CPU, by who spent it. */
export async function jobsPerSecondWithCpu(
  redisUrl: string,
  { queue, worker }: Side,
  sizes: Sizes,
): Promise<{ perSecond: number; cpu: JobCpu }> {
  const { result, cpu } = await cpuPerJob(worker.pid, redisUrl, () => twoLineJobs(queue, sizes));
  return { perSecond: result.perSecond, cpu };
}

export async function memoryPerJob(
  redisUrl: string,
  queue: Queue,
  sizes: Pick<Sizes, 'memoryLines'>,
): Promise<JobMemory> {
  const redis = new Redis(redisUrl);
  try {
    return await jobMemory(redis, queue, prompts.lines(sizes.memoryLines));
  } finally {
    redis.disconnect();
  }
}

/** The worker's RSS once idle, and its peak (VmHWM) after a run printed floodMiB MiB. */
export async function peakRss(
  queue: Queue,
  worker: BenchWorker,
  sizes: Sizes,
): Promise<{ idle: number; peak: number }> {
  await sleep(1000);
  const idle = procStatusBytes(worker.pid, 'VmRSS');
  const lines = (sizes.floodMiB * 1024 * 1024) / FLOOD_LINE_BYTES;
  const jobId = randomUUID();
  await queue.add('execute', { prompt: prompts.lines(lines, FLOOD_LINE_BYTES) }, { jobId });
  await waitForJob(queue, jobId);
  return { idle, peak: procStatusBytes(worker.pid, 'VmHWM') };
}
