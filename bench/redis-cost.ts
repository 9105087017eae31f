import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { costOf, type RedisCounters } from './redis-counters.js';
import { prompts } from './runs.js';

const POLL_MS = 200;
const TWO_LINES = prompts.lines(2);

/**
 * Waits, one cheap command every POLL_MS, until `count` jobs of the queue completed; returns
 * how many commands it sent, which the caller takes off the measured ones.
 */
async function waitCompleted(redis: Redis, queue: Queue, count: number): Promise<number> {
  const key = `${queue.opts.prefix ?? 'bull'}:${queue.name}:completed`;
  for (let polls = 1; ; polls++) {
    if ((await redis.zcard(key)) >= count) return polls;
    await sleep(POLL_MS);
  }
}

export interface EventRun {
  readonly lines: number;
  /** Lines a second; 0: as fast as the worker takes them. */
  readonly rate: number;
  readonly subscribers: number;
}

/** Redis's cost per event of one job printing `lines` lines, watched by `subscribers`. */
export async function eventCost(
  redisUrl: string,
  queue: Queue,
  { lines, rate, subscribers }: EventRun,
): Promise<RedisCounters> {
  const jobId = randomUUID();
  const redis = new Redis(redisUrl);
  const watchers = Array.from({ length: subscribers }, () => new Redis(redisUrl));
  let received = 0;
  watchers[0]?.on('message', () => received++);
  try {
    await Promise.all(watchers.map((w) => w.subscribe(`${queue.qualifiedName}:events:${jobId}`)));
    await queue.clean(0, 1_000_000, 'completed');
    return await costOf(redis, async () => {
      await queue.add('execute', { prompt: prompts.lines(lines, undefined, rate) }, { jobId });
      const ownCalls = await waitCompleted(redis, queue, 1);
      await sleep(POLL_MS);
      // The first subscriber saw every event the job published.
      return { units: received, ownCalls };
    });
  } finally {
    redis.disconnect();
    for (const watcher of watchers) watcher.disconnect();
  }
}

/** Redis's cost per job of `count` jobs of two lines each (their events included). */
export async function jobCost(
  redisUrl: string,
  queue: Queue,
  count: number,
): Promise<RedisCounters> {
  const redis = new Redis(redisUrl);
  try {
    await queue.clean(0, 1_000_000, 'completed');
    return await costOf(redis, async () => {
      const job = { name: 'execute', data: { prompt: TWO_LINES } };
      await queue.addBulk(Array.from({ length: count }, () => job));
      return { units: count, ownCalls: await waitCompleted(redis, queue, count) };
    });
  } finally {
    redis.disconnect();
  }
}

/** Redis's cost per second of an idle worker (its blocking waits, stalled-job checks). */
export async function idleCost(redisUrl: string, seconds: number): Promise<RedisCounters> {
  const redis = new Redis(redisUrl);
  try {
    return await costOf(redis, async () => {
      await sleep(seconds * 1000);
      return { units: seconds, ownCalls: 0 };
    });
  } finally {
    redis.disconnect();
  }
}
