import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { waitForJob } from './observe.js';

/** What one job costs in Redis, in bytes (MEMORY USAGE, every element counted). */
export interface JobMemory {
  readonly history: number;
  readonly jobHash: number;
  /** Growth of BullMQ's `<prefix>:<queue>:events` stream while the job ran. */
  readonly bullEvents: number;
  /** Any other key named after the job (logs, locks, markers). */
  readonly other: number;
  readonly total: number;
}

const usage = async (redis: Redis, key: string): Promise<number> =>
  Number((await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);

/** Runs one job with `prompt` to its end and sums the Redis memory its keys hold. */
export async function jobMemory(redis: Redis, queue: Queue, prompt: string): Promise<JobMemory> {
  const prefix = queue.opts.prefix ?? 'bull';
  const base = `${prefix}:${queue.name}`;
  const eventsBefore = await usage(redis, `${base}:events`);
  const jobId = randomUUID();
  await queue.add('execute', { prompt }, { jobId });
  await waitForJob(queue, jobId);
  const bullEvents = (await usage(redis, `${base}:events`)) - eventsBefore;
  let history = 0;
  let jobHash = 0;
  let other = 0;
  for (const key of await scanAll(redis, `*${jobId}*`)) {
    const bytes = await usage(redis, key);
    if (key === `${base}:history:${jobId}`) history += bytes;
    else if (key === `${base}:${jobId}`) jobHash += bytes;
    else other += bytes;
  }
  return { history, jobHash, bullEvents, other, total: history + jobHash + bullEvents + other };
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...found);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}
