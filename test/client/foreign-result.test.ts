import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** Jobs of a claudebox queue that something other than a claudebox worker completed. */
describe('a job completed without an ExecuteResult', () => {
  let queueName: string;
  let client: ClaudeboxClient;
  let connection: Redis;
  let queue: Queue;

  beforeEach(() => {
    queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue(queueName, { connection });
  });
  afterEach(async () => {
    await client.close();
    await queue.close();
    connection.disconnect();
  });

  /** Enqueues a valid request, then lets a plain BullMQ worker complete it with `value`. */
  async function completeWith(value: unknown): Promise<string> {
    const jobId = await client.enqueue({ prompt: 'hello' });
    const foreign = new Worker(queueName, () => Promise.resolve(value), { connection });
    try {
      for (let i = 0; i < 100 && (await queue.getJobState(jobId)) !== 'completed'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await foreign.close();
    }
    expect(await queue.getJobState(jobId)).toBe('completed');
    return jobId;
  }

  it('gives a failure naming what is wrong rather than waiting for ever', async () => {
    const jobId = await completeWith(null);
    const result = await client.result(jobId, { timeoutMs: 5000 });
    expect(result).toMatchObject({ jobId, success: false, failure: 'worker-error', lastSeq: 0 });
    expect(result.error).toMatch(/return value is not an ExecuteResult/);
  });

  it('hands on a result of an older or newer worker as it was stored', async () => {
    // Fields it lacks (retryAt, jobCostUsd) or has beyond this contract do not make it foreign.
    const workspace = { base: 'abc', changed: ['a.txt'] };
    const stored = { jobId: 'x', success: true, failure: null, lastSeq: 3, workspace, more: 1 };
    const jobId = await completeWith(stored);
    // What later versions added reads as the contract says it does in older results.
    expect(await client.result(jobId, { timeoutMs: 5000 })).toEqual({
      ...stored,
      stoppedAfterResult: false,
      workspace: { ...workspace, pathsOmitted: 0 },
    });
  });

  it('does not hand on a value of another shape as a result', async () => {
    const jobId = await completeWith({ success: true, exitCode: 'zero' });
    const result = await client.result(jobId, { timeoutMs: 5000 });
    expect(result).toMatchObject({ success: false, failure: 'worker-error' });
  });
});
