import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { readRunState, type ExecuteResult } from '../../src/contract/index.js';
import { pidsWithEnv } from '../support/processes.js';
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

/** Far longer than any of these runs may take: a run that waits for it has failed the test. */
const TIMEOUT_SECONDS = 300;

describe('a CLI that hangs', () => {
  let worker: TestWorker;
  let queue: Queue;

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await queue.obliterate({ force: true });
    await queue.close();
  });

  async function runJob(data: Record<string, unknown>, env: Record<string, string> = {}) {
    const queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-hangs.mjs'),
      env,
    });
    const jobId = randomUUID();
    const started = Date.now();
    await queue.add('execute', { timeout: TIMEOUT_SECONDS, ...data }, { jobId, attempts: 1 });
    const state = await waitFor('the job to end', async () => {
      const now = await queue.getJobState(jobId);
      return now === 'completed' || now === 'failed' ? now : undefined;
    });
    const job = await queue.getJob(jobId);
    return {
      state,
      job,
      seconds: (Date.now() - started) / 1000,
      result: readRunState(job?.progress)?.result,
      leftovers: pidsWithEnv('CLAUDEBOX_JOB_ID', jobId),
    };
  }

  it('after printing its result completes in seconds, not at the timeout, and says it was stopped', async () => {
    const { state, job, seconds, leftovers } = await runJob({ prompt: 'after result' });

    expect(state).toBe('completed');
    const result = job?.returnvalue as ExecuteResult;
    expect(result).toMatchObject({
      success: true,
      failure: null,
      finalOutput: 'done',
      stoppedAfterResult: true,
      timedOut: false,
    });
    expect(seconds).toBeLessThan(60);
    expect(leftovers).toEqual([]);
  });

  it('after printing its result and then cancelled, completes as its result line says', async () => {
    const ending = runJob({ prompt: 'after result' }, { RESULT_GRACE_SECONDS: '120' });
    // Cancelled while it hangs after its result, long before the grace is up.
    const jobId = await waitFor('the result line', async () => {
      const jobs = (await queue.getJobs(['active'])).filter((job) => job.id !== undefined);
      const id = jobs[0]?.id;
      if (id === undefined) return undefined;
      const cancelling = createClient({ url: redisUrl, queueName: queue.name });
      try {
        const events = await collectEvents(cancelling.events(id, { follow: false }));
        if (!events.some((e) => e.type === 'output' && e.content.includes('"type":"result"'))) {
          return undefined;
        }
        await cancelling.cancel(id, 'no longer needed');
        return id;
      } finally {
        await cancelling.close();
      }
    });
    const { state, job, seconds, leftovers } = await ending;

    expect(job?.id).toBe(jobId);
    expect(state).toBe('completed');
    expect(job?.returnvalue).toMatchObject({
      success: true,
      finalOutput: 'done',
      stoppedAfterResult: true,
      cancelled: false,
    });
    expect(seconds).toBeLessThan(60);
    expect(leftovers).toEqual([]);
  });

  it('in silence is stopped as idle after idleTimeout', async () => {
    const { state, job, seconds, result, leftovers } = await runJob({
      prompt: 'silent',
      idleTimeout: 2,
    });

    expect(state).toBe('failed');
    expect(job?.failedReason).toBe(
      'idle: it printed nothing for 2s; it ignored SIGINT and was killed',
    );
    expect(result).toMatchObject({ failure: 'idle', stoppedAfterResult: false, timedOut: false });
    expect(seconds).toBeLessThan(60);
    expect(leftovers).toEqual([]);
  });

  it('is not idle while it waits out an API’s retry-after it announced', async () => {
    const { state, job } = await runJob({ prompt: 'retry 4000', idleTimeout: 2 });

    expect(state).toBe('completed');
    expect(job?.returnvalue).toMatchObject({ success: true, finalOutput: 'waited it out' });
  });

  it('is not idle while it keeps printing, however long the whole run takes', async () => {
    const { state, job } = await runJob({ prompt: 'slowly 8', idleTimeout: 2 });

    expect(state).toBe('completed');
    expect(job?.returnvalue).toMatchObject({
      success: true,
      finalOutput: 'took my time',
      stoppedAfterResult: false,
    });
  });
});
