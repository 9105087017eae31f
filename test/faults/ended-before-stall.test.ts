import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import {
  collectEvents,
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/**
 * A job whose attempt recorded its end, after which its worker died (or lost the lock) before
 * BullMQ moved it to completed: BullMQ's stall check puts it back in the queue, one stall more.
 * Done here to a completed job by hand, as the stall check would have left it.
 */
async function endedThenStalled(redis: Redis, queueName: string, jobId: string): Promise<void> {
  const key = `bull:${queueName}`;
  await redis
    .multi()
    .zrem(`${key}:completed`, jobId)
    .hdel(`${key}:${jobId}`, 'finishedOn', 'returnvalue')
    .hincrby(`${key}:${jobId}`, 'atm', -1)
    .hincrby(`${key}:${jobId}`, 'stc', 1)
    .lpush(`${key}:wait`, jobId)
    .zadd(`${key}:marker`, 0, '0')
    .exec();
}

describe('a job that had ended when a stall put it back in the queue', () => {
  let worker: TestWorker | undefined;
  let client: ClaudeboxClient | undefined;
  let redis: Redis | undefined;
  afterEach(async () => {
    await worker?.worker.shutdown(0);
    await client?.close();
    redis?.disconnect();
  });

  it('ends as it had, with its result and output, without running again', async () => {
    const queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });
    client = createClient({ url: redisUrl, queueName });
    redis = new Redis(redisUrl);
    const jobId = await client.enqueue({ prompt: 'once' });
    const first = await client.result(jobId, { timeoutMs: 30_000 });
    expect(first.success).toBe(true);

    await endedThenStalled(redis, queueName, jobId);
    const queue = createQueue(redisUrl, queueName);
    try {
      await waitFor('the job to be completed again', async () =>
        (await queue.getJobState(jobId)) === 'completed' ? true : undefined,
      );
    } finally {
      await queue.close();
    }

    expect(await client.result(jobId)).toEqual(first);
    const events = await collectEvents(client.events(jobId, { follow: false }));
    expect(events.filter((event) => event.type === 'started')).toHaveLength(1);
  });
});
