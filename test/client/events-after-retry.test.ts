import type { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
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

/** The CLI of these runs fails at once, as on an API error: every attempt ends `failed`. */
const failing = fixture('claude-api-error.mjs');

describe('the events of a job an operator retries by hand', () => {
  let client: ClaudeboxClient;
  let queue: Queue;
  let queueName: string;
  const workers: TestWorker[] = [];

  const startWorker = async (): Promise<TestWorker> => {
    const worker = await startTestWorker({ redisUrl, queueName, claudeBin: failing });
    workers.push(worker);
    return worker;
  };

  /** The job's events until its end; the attempt before the retry ended with `retrying: false`. */
  const failedOnce = async (): Promise<{ jobId: string; first: ExecuteEvent[] }> => {
    const jobId = await client.enqueue({ prompt: 'fails' });
    expect(await client.result(jobId, { timeoutMs: 30_000 })).toMatchObject({ success: false });
    const first = await collectEvents(client.events(jobId));
    expect(first.at(-1)).toMatchObject({ type: 'failed', attempt: 1, data: { retrying: false } });
    return { jobId, first };
  };

  const retry = async (jobId: string): Promise<void> => {
    const job = await queue.getJob(jobId);
    await job?.retry('failed');
  };

  beforeEach(() => {
    queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.worker.shutdown(0);
    await queue.close();
    await client.close();
  });

  it('are read back whole once the retry ran: both attempts, numbered on, each once', async () => {
    await startWorker();
    const { jobId, first } = await failedOnce();
    await retry(jobId);
    await waitFor('the retry to end', async () =>
      (await queue.getJob(jobId))?.finishedOn && (await client.result(jobId)).attempt === 2
        ? true
        : undefined,
    );

    const all = await collectEvents(client.events(jobId, { idleCheckMs: 3_600_000 }));
    expect(all.slice(0, first.length)).toEqual(first);
    expect(all.map((event) => event.seq)).toEqual(all.map((_, at) => at + 1));
    expect(all.length).toBeGreaterThan(first.length);
    expect(all[first.length]).toMatchObject({ type: 'started', attempt: 2 });
    expect(all.at(-1)).toMatchObject({ type: 'failed', attempt: 2, data: { retrying: false } });
    const fromRetry = await collectEvents(client.events(jobId, { fromSeq: first.length + 1 }));
    expect(fromRetry).toEqual(all.slice(first.length));
  });

  it('are followed past the earlier end while the retry waits for a worker, until its own end', async () => {
    const worker = await startWorker();
    const { jobId, first } = await failedOnce();
    // No worker: the retried job waits, its history still ending with the earlier end.
    await worker.worker.shutdown(0);
    await retry(jobId);
    expect(await queue.getJobState(jobId)).toBe('waiting');

    const whole: ExecuteEvent[] = [];
    const following = collectEvents(client.events(jobId), whole);
    const fromRetry = collectEvents(client.events(jobId, { fromSeq: first.length + 1 }));
    await waitFor('the earlier attempt read back', () =>
      whole.length === first.length ? true : undefined,
    );
    const over = await Promise.race([
      following.then(() => 'ended'),
      new Promise((resolve) => setTimeout(() => resolve('going on'), 500)),
    ]);
    expect(over).toBe('going on');

    await startWorker();
    const all = await following;
    expect(all.slice(0, first.length)).toEqual(first);
    expect(all.map((event) => event.seq)).toEqual(all.map((_, at) => at + 1));
    expect(all.at(-1)).toMatchObject({ type: 'failed', attempt: 2, data: { retrying: false } });
    expect(await fromRetry).toEqual(all.slice(first.length));
  });
});
