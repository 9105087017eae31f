import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { eventRate, jobRate, latencyPercentile, waitForJob, watchJob } from './observe.js';
import { procStatusBytes, type BenchWorker, type WorkerSettings } from './processes.js';
import { jobMemory, type JobMemory } from './redis-memory.js';

/** How big each measurement is (the full run's or --quick's). */
export interface Sizes {
  readonly memoryLines: number;
  readonly eventLines: number;
  readonly jobs: number;
  readonly latencyLines: number;
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
  readonly latencyP99Ms: number;
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

/** events/s, latency p99 and jobs/s of one worker (claudebox's or the bare one). */
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
  const paced = await watchJob(
    redisUrl,
    queue,
    prompts.lines(sizes.latencyLines, LINE_BYTES, LATENCY_RATE),
    sizes.latencyLines + 2,
  );
  return {
    eventsPerSecond: eventRate(flood),
    latencyP99Ms: latencyPercentile(paced, 99),
    jobsPerSecond: await jobsPerSecond(queue, sizes),
  };
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
