import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';

/** An output event as a subscriber saw it: when it arrived, and the line's own `t` if any. */
export interface Seen {
  readonly at: number;
  readonly sentAt: number | undefined;
}

/** The clock of the fake CLI's `t`: monotonic, and the same in every process of the machine. */
const clockMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Enqueues one job with `prompt` and watches its channel as a consumer would, from before the
 * job exists until `outputs` output events arrived and the job ended.
 */
export async function watchJob(
  redisUrl: string,
  queue: Queue,
  prompt: string,
  outputs: number,
): Promise<Seen[]> {
  const jobId = randomUUID();
  const subscriber = new Redis(redisUrl);
  const seen: Seen[] = [];
  subscriber.on('message', (_channel: string, message: string) => {
    const at = clockMs();
    const event = JSON.parse(message) as { type: string; content?: string };
    if (event.type !== 'output' || event.content === undefined) return;
    const line = JSON.parse(event.content) as { t?: number };
    seen.push({ at, sentAt: line.t === undefined || line.t === 0 ? undefined : line.t });
  });
  try {
    await subscriber.subscribe(`${queue.qualifiedName}:events:${jobId}`);
    await queue.add('execute', { prompt }, { jobId });
    await waitForJob(queue, jobId);
    const deadline = performance.now() + 10_000;
    while (seen.length < outputs && performance.now() < deadline) await sleep(5);
    if (seen.length < outputs)
      throw new Error(`${seen.length} of ${outputs} output events arrived`);
    return seen;
  } finally {
    subscriber.disconnect();
  }
}

/** Waits until the job completed; throws if it failed. */
export async function waitForJob(queue: Queue, jobId: string): Promise<void> {
  for (;;) {
    const state = await queue.getJobState(jobId);
    if (state === 'completed') return;
    if (state === 'failed') {
      const job = await queue.getJob(jobId);
      throw new Error(`job ${jobId} failed: ${job?.failedReason ?? 'unknown'}`);
    }
    await sleep(10);
  }
}

/**
 * How often jobRate asks how many jobs completed. Each question costs the machine the worker
 * runs on: at 5 ms the benchmark's own process took 1.6 ms of CPU per job of the bare worker
 * and 4.9 ms per job of claudebox's, whose run lasts longer, on a machine where both rates are
 * bound by its two cores. At 20 ms the rate is still known to within a fraction of a percent.
 */
const POLL_MS = 20;

export interface JobRate {
  readonly completed: number;
  readonly perSecond: number;
}

/**
 * Enqueues `count` jobs at once and returns how many completed and jobs/s: completed jobs over
 * the time until all completed, or until `capSeconds` (a slow worker is measured on what it
 * did by then).
 */
export async function jobRate(
  queue: Queue,
  count: number,
  prompt: string,
  capSeconds = Infinity,
): Promise<JobRate> {
  const started = performance.now();
  const deadline = started + capSeconds * 1000;
  await queue.addBulk(Array.from({ length: count }, () => ({ name: 'execute', data: { prompt } })));
  let completed = 0;
  while (completed < count && performance.now() < deadline) {
    await sleep(POLL_MS);
    const counts = await queue.getJobCounts('completed', 'failed');
    if ((counts.failed ?? 0) > 0) throw new Error(`${counts.failed} of ${count} jobs failed`);
    completed = counts.completed ?? 0;
  }
  const seconds = (performance.now() - started) / 1000;
  // What is left is not measured: the worker need not run it before it stops.
  await queue.drain();
  await queue.clean(0, count, 'completed');
  return { completed, perSecond: completed / seconds };
}

/** Events a second from the first output event to the last, as the subscriber saw them. */
export function eventRate(seen: readonly Seen[]): number {
  const first = seen[0]?.at ?? NaN;
  const last = seen.at(-1)?.at ?? NaN;
  return (seen.length - 1) / ((last - first) / 1000);
}

/** The p-th percentile of line -> subscriber latency, in ms, over the lines that carry `t`. */
export function latencyPercentile(seen: readonly Seen[], p: number): number {
  const latencies = seen
    .flatMap(({ at, sentAt }) => (sentAt === undefined ? [] : [at - sentAt]))
    .sort((a, b) => a - b);
  return latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
}

/** The middle of `values` (of the two middle ones, their mean); NaN for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? NaN;
  return sorted.length % 2 === 1 ? upper : (upper + (sorted[middle - 1] ?? NaN)) / 2;
}
