import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { readRunState, type ExecuteResult } from '../../src/contract/index.js';
import { pidsWithEnv } from '../support/processes.js';
import {
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

  async function runJob(data: Record<string, unknown>) {
    const queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-hangs.mjs'),
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
