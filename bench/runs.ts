import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  eventRate,
  jobRate,
  latencyPercentile,
  waitForJob,
  watchJob,
  type Seen,
} from './observe.js';
import { procStatusBytes, type BenchWorker, type WorkerSettings } from './processes.js';
import { jobMemory, type JobMemory } from './redis-memory.js';

/** How big each measurement is (the full run's or --quick's). */
export interface Sizes {
  readonly memoryLines: number;
  readonly eventLines: number;
  readonly jobs: number;
  readonly latencyLines: number;
  /** Runs of the latency figure per worker, taken in turns with the other worker's. */
  readonly latencyTurns: number;
  readonly floodMiB: number;
  /** The longest a jobs/s figure is measured for. */
  readonly jobSeconds: number;
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

/** What the event figures measured on one worker. */
export interface EventFigures {
  readonly eventsPerSecond: number;
  readonly jobsPerSecond: number;
}

export type Start = (settings: WorkerSettings) => Promise<BenchWorker>;

/** Starts a worker, gives `measure` a queue of its own on it, and stops both however it ends. */
export async function withWorker<T>(
  start: Start,
  settings: WorkerSettings,
  measure: (queue: Queue, worker: BenchWorker) => Promise<T>,
): Promise<T> {
  const isolation = settings.env?.RUN_ISOLATION ?? 'default';
  console.error(`${start.name}, concurrency ${settings.concurrency}, isolation ${isolation}`);
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

/** Two workers at once, each with a queue of its own, for figures measured side by side. */
export function withWorkers<T>(
  first: readonly [Start, WorkerSettings],
  second: readonly [Start, WorkerSettings],
  measure: (firstQueue: Queue, secondQueue: Queue) => Promise<T>,
): Promise<T> {
  return withWorker(first[0], first[1], (firstQueue) =>
    withWorker(second[0], second[1], (secondQueue) => measure(firstQueue, secondQueue)),
  );
}

/** events/s and jobs/s of one worker (claudebox's or the bare one). */
export async function eventFigures(
  redisUrl: string,
  queue: Queue,
  sizes: Sizes,
): Promise<EventFigures> {
  // init + the lines + result: each is an output event.
  const flood = await watchJob(
    redisUrl,
    queue,
    prompts.lines(sizes.eventLines),
    sizes.eventLines + 2,
  );
  return {
    eventsPerSecond: eventRate(flood),
    jobsPerSecond: await jobsPerSecond(queue, sizes),
  };
}

/** A worker's tidying up after a job it reported done, which the next run waits out. */
const SETTLE_MS = 500;
const WARM_UP_LINES = 150;

/**
 * Line -> subscriber latency p99 of each worker, from `latencyTurns` runs of each printing 1,000
 * lines a second (`latencyLines` in all), the workers' runs one after the other in turns.
 */
export async function latencyP99InTurns(
  redisUrl: string,
  queues: readonly Queue[],
  sizes: Pick<Sizes, 'latencyLines' | 'latencyTurns'>,
): Promise<number[]> {
  const lines = Math.ceil(sizes.latencyLines / sizes.latencyTurns);
  const seen: Seen[][] = queues.map(() => []);
  // A turn of WARM_UP_LINES first, not counted: the code of a paced run gets compiled.
  for (let turn = -1; turn < sizes.latencyTurns; turn++) {
    // Each worker goes first in every other turn, so neither always follows the other.
    const order = [...queues.entries()];
    if (turn % 2 !== 0) order.reverse();
    for (const [index, queue] of order) {
      // A worker tidies up after a job it reported done: the next run, the other worker's,
      // must not be measured against that.
      await sleep(SETTLE_MS);
      const count = turn < 0 ? WARM_UP_LINES : lines;
      const prompt = prompts.lines(count, LINE_BYTES, LATENCY_RATE);
      const runs = await watchJob(redisUrl, queue, prompt, count + 2);
      if (turn >= 0) seen[index]?.push(...runs);
    }
  }
  return seen.map((runs) => latencyPercentile(runs, 99));
}

export async function jobsPerSecond(queue: Queue, sizes: Sizes): Promise<number> {
  return jobRate(queue, sizes.jobs, TWO_LINES, sizes.jobSeconds);
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
