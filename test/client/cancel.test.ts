import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { eventually, pidsWithEnv, runPids } from '../support/processes.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  createQueue,
  fixture,
  uniqueQueueName,
  waitFor,
  collectEvents,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('cancel', () => {
  let queueName: string;
  let client: ClaudeboxClient;
  let queue: Queue;
  const processes: WorkerProcess[] = [];

  const startWorker = async (bin = 'claude-slow.mjs'): Promise<WorkerProcess> => {
    const worker = spawnWorkerProcess({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture(bin),
      SHUTDOWN_GRACE_SECONDS: '0',
    });
    processes.push(worker);
    await worker.waitForLog('worker ready');
    return worker;
  };

  beforeEach(() => {
    queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });

  /** Waits until the job's run has `count` processes. */
  const runningOn = async (jobId: string, count = 1): Promise<number[]> =>
    waitFor(`job ${jobId} to run`, () => {
      const pids = runPids(jobId);
      return pids.length >= count ? pids : undefined;
    });

  it('stops a run on whichever of two worker processes has it, within 2 s, without a retry, leaving the other job alone', async () => {
    // Runs deaf to SIGINT, with a grandchild in a session of its own, and the default
    // KILL_GRACE_SECONDS of 5: a cancel still has them gone within 2 s.
    const [first, second] = [
      await startWorker('claude-stubborn.mjs'),
      await startWorker('claude-stubborn.mjs'),
    ];
    const [a, b] = [randomUUID(), randomUUID()];
    await client.enqueue({ prompt: 'forever' }, { jobId: a, attempts: 3 });
    await client.enqueue({ prompt: 'forever' }, { jobId: b, attempts: 3 });
    await Promise.all([runningOn(a, 2), runningOn(b, 2)]);
    const events = collectEvents(client.events(a));

    const asked = Date.now();
    expect(await client.cancel(a, 'not needed any more')).toEqual({
      jobId: a,
      outcome: 'stopping',
      state: 'active',
    });
    expect(await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', a).length === 0, 2000)).toBe(
      true,
    );
    const stoppedAfter = Date.now() - asked;

    const result = await client.result(a, { timeoutMs: 10_000 });
    expect(result).toMatchObject({
      cancelled: true,
      failure: 'cancelled',
      retrying: false,
      attempt: 1,
    });
    expect(result.error).toBe('cancelled: not needed any more');
    const job = await queue.getJob(a);
    expect(await job?.getState()).toBe('failed');
    expect(job?.attemptsMade).toBe(1);
    expect(job?.failedReason).toBe('cancelled: not needed any more');
    const terminal = (await events).at(-1);
    expect(terminal?.type === 'failed' && terminal.data.cancelled).toBe(true);

    expect(await queue.getJobState(b)).toBe('active');
    expect(runPids(b)).toHaveLength(2);
    expect(stoppedAfter).toBeLessThan(2000);
    const errors = [...first.logs, ...second.logs].filter((log) => Number(log.level) >= 50);
    expect(errors).toEqual([]);
  });

  it('ignores a control message without a cancel marker (another deployment’s, with another prefix)', async () => {
    await startWorker();
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'sleep 60' }, { jobId });
    await runningOn(jobId);
    const redis = new Redis(redisUrl);
    try {
      await redis.publish(
        `${queueName}:control`,
        JSON.stringify({ type: 'cancel', jobId, reason: 'not yours' }),
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await queue.getJobState(jobId)).toBe('active');
    } finally {
      await redis.quit();
    }
    expect(await client.cancel(jobId, 'yours')).toMatchObject({ outcome: 'stopping' });
    expect(await client.result(jobId, { timeoutMs: 10_000 })).toMatchObject({ cancelled: true });
  });

  it('fails a waiting job as cancelled without ever starting it', async () => {
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'sleep 1' }, { jobId });
    expect(await client.cancel(jobId, 'changed plans')).toEqual({
      jobId,
      outcome: 'cancelled',
      state: 'waiting',
    });

    await startWorker();
    const result = await client.result(jobId, { timeoutMs: 10_000 });
    expect(result).toMatchObject({
      cancelled: true,
      exitCode: null,
      error: 'cancelled before it started: changed plans',
    });
    expect((await collectEvents(client.events(jobId))).map((e) => e.type)).toEqual(['failed']);
  });

  it('fails a delayed job as cancelled now, not when its delay is up', async () => {
    await startWorker();
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'sleep 1' }, { jobId, delay: 3_600_000 });
    expect(await client.cancel(jobId)).toEqual({ jobId, outcome: 'cancelled', state: 'delayed' });
    const result = await client.result(jobId, { timeoutMs: 10_000 });
    expect(result).toMatchObject({
      cancelled: true,
      error: 'cancelled before it started: cancelled by request',
    });
  });

  it('answers for a finished or unknown job without error noise in the worker', async () => {
    const worker = await startWorker();
    // What the worker says from here on: not its warnings at start about the host.
    const before = worker.logs.length;
    const jobId = await client.enqueue({ prompt: 'sleep 0' });
    await client.result(jobId, { timeoutMs: 10_000 });

    expect(await client.cancel(jobId)).toEqual({
      jobId,
      outcome: 'already-finished',
      state: 'completed',
    });
    expect(await client.cancel('nope')).toEqual({ jobId: 'nope', outcome: 'not-found' });
    // Names of the queue's own keys (a job's history, its log): no job either.
    for (const id of [`history:${jobId}`, `${jobId}:logs`]) {
      expect(await client.cancel(id)).toEqual({ jobId: id, outcome: 'not-found' });
    }
    expect(worker.logs.slice(before).filter((log) => Number(log.level) >= 40)).toEqual([]);
  });

  it('refuses, as a bad request, a job id or reason that is no string, which no worker could read', async () => {
    await startWorker();
    const jobId = await client.enqueue({ prompt: 'sleep 30' });
    await runningOn(jobId);
    // As a caller in JavaScript can.
    const cancel = (id: unknown, reason?: unknown) =>
      client.cancel(id as string, reason as string | undefined);
    await expect(cancel(jobId, 42)).rejects.toMatchObject({
      code: 'invalid-request',
      message: 'invalid request: reason: must be a string, not number',
    });
    await expect(cancel(jobId, null)).rejects.toThrow('reason: must be a string, not null');
    await expect(cancel(Number.NaN)).rejects.toThrow('jobId: must be a string, not number');
    expect(await client.cancel(jobId, 'by a string')).toMatchObject({ outcome: 'stopping' });
    expect(await client.result(jobId, { timeoutMs: 10_000 })).toMatchObject({ cancelled: true });
  });
});
