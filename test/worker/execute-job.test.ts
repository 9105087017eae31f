import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { readRunState, type ExecuteEvent, type ExecuteResult } from '../../src/contract/index.js';
import { pidsWithEnv } from '../support/processes.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  subscribeToEvents,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('an execute job', () => {
  let queueName: string;
  let queue: Queue;
  const workers: TestWorker[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeEach(() => {
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.worker.shutdown(0)));
    await Promise.all(closers.splice(0).map((close) => close()));
    await queue.obliterate({ force: true });
    await queue.close();
  });

  async function worker(bin: string, env: Record<string, string> = {}): Promise<TestWorker> {
    const started = await startTestWorker({ redisUrl, queueName, claudeBin: fixture(bin), env });
    workers.push(started);
    return started;
  }

  async function watch(jobId: string): Promise<ExecuteEvent[]> {
    const subscription = await subscribeToEvents(redisUrl, queueName, jobId);
    closers.push(subscription.close);
    return subscription.events;
  }

  async function finished(jobId: string): Promise<'completed' | 'failed'> {
    return waitFor(`job ${jobId} to finish`, async () => {
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? state : undefined;
    });
  }

  const lastEvent = <T extends ExecuteEvent['type']>(events: ExecuteEvent[], type: T) =>
    waitFor(`a ${type} event`, () =>
      events.findLast((e): e is Extract<ExecuteEvent, { type: T }> => e.type === type),
    );

  it('publishes started, every stdout line and completed, in seq order, and returns the ExecuteResult', async () => {
    await worker('claude-success.mjs');
    const jobId = randomUUID();
    const events = await watch(jobId);

    await queue.add('execute', { prompt: 'say hello' }, { jobId });
    expect(await finished(jobId)).toBe('completed');
    const job = await queue.getJob(jobId);
    const completed = await lastEvent(events, 'completed');

    expect(events.map((e) => e.type)).toEqual([
      'started',
      'output',
      'output',
      'output',
      'completed',
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events.every((e) => e.jobId === jobId && e.attempt === 1)).toBe(true);
    expect(events.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.timestamp))).toBe(
      true,
    );
    const [started, init, assistant, resultLine] = events;
    expect(started).toMatchObject({
      type: 'started',
      data: {
        // A job that names no working directory gets one of its own, under RUN_ROOT.
        cwd: expect.stringMatching(/^\/var\/lib\/claudebox\/scratch\/[0-9a-f]{32}$/),
        resumed: false,
        prompt: 'original',
        isolation: { mode: 'uid', uid: expect.any(Number), namespaces: ['pid', 'ipc', 'mount'] },
      },
    });
    expect(started?.type === 'started' && started.data.pid).toBeGreaterThan(0);
    expect(started?.type === 'started' && started.data.args).toContain('--output-format');
    expect(init).toMatchObject({ type: 'output', stream: 'stdout' });
    expect(JSON.parse(init?.type === 'output' ? init.content : '').type).toBe('system');
    expect(JSON.parse(assistant?.type === 'output' ? assistant.content : '').type).toBe(
      'assistant',
    );
    expect(JSON.parse(resultLine?.type === 'output' ? resultLine.content : '').type).toBe('result');

    const result = job?.returnvalue as ExecuteResult;
    expect(completed.data).toEqual(result);
    expect(result).toMatchObject({
      jobId,
      attempt: 1,
      success: true,
      exitCode: 0,
      error: null,
      timedOut: false,
      cancelled: false,
      costUsd: 0.0123,
      numTurns: 1,
      lastSeq: 5,
      retrying: false,
    });
    expect(result.finalOutput).toMatch(/^done: 9 bytes sha256 /);
    expect(result.sessionId).toBe(started?.type === 'started' ? started.data.sessionId : 'missing');
    expect(result.output.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('runs jobs under a lock of seconds that are no whole number of milliseconds', async () => {
    await worker('claude-success.mjs', { LOCK_DURATION_SECONDS: '2.0005' });
    const job = await queue.add('execute', { prompt: 'hello' });
    expect(await finished(job.id ?? '')).toBe('completed');
  });

  it('gives the CLI an allow-listed environment, never the worker’s own secrets', async () => {
    await worker('claude-env.mjs', {
      REDIS_URL: `${redisUrl}/0`,
      ANTHROPIC_API_KEY: 'sk-test',
      CLAUDE_CODE_MAX_RETRIES: '0',
      AWS_SECRET_ACCESS_KEY: 'for-bedrock',
      DATABASE_PASSWORD: 'hunter2',
      CLAUDE_ENV: 'EXTRA_FOR_TOOLS',
      EXTRA_FOR_TOOLS: 'yes',
    });
    const jobId = randomUUID();
    await queue.add('execute', { prompt: 'env' }, { jobId });
    expect(await finished(jobId)).toBe('completed');
    const seen = JSON.parse((await queue.getJob(jobId))?.returnvalue.finalOutput ?? '{}');

    expect(seen.jobId).toBe(jobId);
    expect(seen.names).toEqual(
      expect.arrayContaining([
        'PATH',
        'HOME',
        'ANTHROPIC_API_KEY',
        'CLAUDE_CODE_MAX_RETRIES',
        'AWS_SECRET_ACCESS_KEY',
        'EXTRA_FOR_TOOLS',
        'CLAUDEBOX_JOB_ID',
        'CLAUDEBOX_RUN_ID',
        'CLAUDEBOX_WORKER_ID',
      ]),
    );
    for (const secret of [
      'REDIS_URL',
      'DATABASE_PASSWORD',
      'QUEUE_NAME',
      'CLAUDE_BIN',
      'CLAUDE_ENV',
    ]) {
      expect(seen.names).not.toContain(secret);
    }
  });

  it('fails invalid job data at once, without a retry, naming each bad field, and keeps serving', async () => {
    await worker('claude-success.mjs');
    const badId = randomUUID();
    const events = await watch(badId);

    await queue.add(
      'execute',
      { prompt: '', allowedTools: ['--dangerously-skip-permissions'], extra: 1 },
      {
        jobId: badId,
        attempts: 3,
      },
    );
    expect(await finished(badId)).toBe('failed');
    const bad = await queue.getJob(badId);
    expect(bad?.attemptsMade).toBe(1);
    expect(bad?.failedReason).toBe(
      'invalid job data: prompt: must not be empty; allowedTools.0: "--dangerously-skip-permissions" is not a tool name such as "Bash" or "Bash(git diff:*)"; extra: unknown field',
    );
    const failed = await lastEvent(events, 'failed');
    expect(events.map((e) => e.type)).toEqual(['failed']);
    expect(failed.data).toMatchObject({
      failure: 'invalid-request',
      exitCode: null,
      retrying: false,
    });
    expect(readRunState(bad?.progress)?.result?.error).toBe(bad?.failedReason);

    const goodId = randomUUID();
    await queue.add('execute', { prompt: 'next' }, { jobId: goodId });
    expect(await finished(goodId)).toBe('completed');
  });

  it('retries a failed run: two attempts, seq growing across them, the reason carrying the CLI error and exit code', async () => {
    await worker('claude-api-error.mjs');
    const jobId = randomUUID();
    const events = await watch(jobId);

    await queue.add('execute', { prompt: 'fail please' }, { jobId, attempts: 2 });
    expect(await finished(jobId)).toBe('failed');
    const job = await queue.getJob(jobId);
    await waitFor('two failed events', () =>
      events.filter((e) => e.type === 'failed').length === 2 ? true : undefined,
    );

    expect(job?.attemptsMade).toBe(2);
    expect(job?.failedReason).toBe(
      'claude reported an error (exited with code 1): API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server error"}}',
    );
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(events.map((e) => `${e.attempt}:${e.type}`)).toEqual([
      '1:started',
      '1:output',
      '1:output',
      '1:failed',
      '2:started',
      '2:output',
      '2:output',
      '2:failed',
    ]);
    const [first, second] = events.filter((e) => e.type === 'failed');
    expect(first?.type === 'failed' && first.data.retrying).toBe(true);
    // The retry continues the session fixed before the first attempt.
    const starts = events.filter((e) => e.type === 'started');
    expect(starts[1]?.type === 'started' && starts[1].data.sessionId).toBe(
      starts[0]?.type === 'started' && starts[0].data.sessionId,
    );
    expect(starts[0]?.type === 'started' && starts[0].data.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(second?.type === 'failed' && second.data.retrying).toBe(false);
    const stored = readRunState(job?.progress)?.result;
    expect(stored).toMatchObject({
      attempt: 2,
      exitCode: 1,
      isError: true,
      apiErrorStatus: 500,
      lastSeq: 8,
    });
    expect(stored?.error).toBe(job?.failedReason);
  });

  it('ends an attempt the worker itself cannot carry out with a terminal event saying why', async () => {
    await worker('claude-success.mjs');
    const sessionId = randomUUID();
    // A session transcript in Redis that is not gzip: it cannot be put back for --resume.
    const redis = new Redis(redisUrl);
    closers.push(async () => {
      await redis.quit();
    });
    await redis.hset(`bull:${queueName}:session:${sessionId}`, { bytes: 10 });
    await redis.set(`bull:${queueName}:session:${sessionId}:data`, 'not gzip');
    const jobId = randomUUID();
    const events = await watch(jobId);

    await queue.add(
      'execute',
      { prompt: 'go on', resumeSessionId: sessionId },
      { jobId, attempts: 2 },
    );
    expect(await finished(jobId)).toBe('failed');
    const job = await queue.getJob(jobId);

    expect(job?.attemptsMade).toBe(2);
    expect(job?.failedReason).toBe(
      `worker error: could not restore session ${sessionId}: incorrect header check`,
    );
    await waitFor('two failed events', () =>
      events.filter((e) => e.type === 'failed').length === 2 ? true : undefined,
    );
    expect(events.map((e) => `${e.attempt}:${e.type}`)).toEqual(['1:failed', '2:failed']);
    expect(readRunState(job?.progress)?.result).toMatchObject({
      failure: 'worker-error',
      retrying: false,
    });
  });

  it('stops the whole process tree on timeout and fails the job with timedOut', async () => {
    await worker('claude-stubborn.mjs');
    const jobId = randomUUID();
    const events = await watch(jobId);

    await queue.add('execute', { prompt: 'never ends', timeout: 1 }, { jobId, attempts: 1 });
    expect(await finished(jobId)).toBe('failed');
    const job = await queue.getJob(jobId);
    const failed = await lastEvent(events, 'failed');

    expect(job?.failedReason).toBe('timed out after 1s; it ignored SIGINT and was killed');
    expect(failed.data).toMatchObject({ timedOut: true, failure: 'timeout', signal: 'SIGKILL' });
    const grandchild = events.find((e) => e.type === 'output' && e.content.includes('grandchild'));
    expect(grandchild).toBeDefined();
    expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);
  });

  it('puts an active job back in the queue on shutdown without spending an attempt, and the next worker runs it', async () => {
    const first = await worker('claude-slow.mjs');
    const jobId = randomUUID();
    const events = await watch(jobId);

    await queue.add('execute', { prompt: 'sleep 2' }, { jobId, attempts: 1 });
    await lastEvent(events, 'started');
    await first.worker.shutdown(200);
    workers.splice(workers.indexOf(first), 1);

    const job = await queue.getJob(jobId);
    expect(await queue.getJobState(jobId)).toBe('waiting');
    expect(job?.attemptsMade).toBe(0);
    const requeued = await lastEvent(events, 'failed');
    expect(requeued.data).toMatchObject({ failure: 'shutdown', retrying: true, attempt: 1 });
    expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);

    await worker('claude-slow.mjs');
    expect(await finished(jobId)).toBe('completed');
    const result = (await queue.getJob(jobId))?.returnvalue as ExecuteResult;
    expect(result).toMatchObject({ attempt: 2, success: true, finalOutput: 'slept 2s' });
    expect(result.sessionId).toBe(requeued.data.sessionId);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it('requeues the job of a run that takes its whole KILL_GRACE_SECONDS to stop on shutdown', async () => {
    const first = await worker('claude-stubborn.mjs', { KILL_GRACE_SECONDS: '7' });
    const jobId = randomUUID();
    const events = await watch(jobId);
    await queue.add('execute', { prompt: 'hold on' }, { jobId, attempts: 1 });
    // Its first line: printed once it ignores SIGINT, which a stop sent sooner would not meet.
    await lastEvent(events, 'output');
    await first.worker.shutdown(200);
    workers.splice(workers.indexOf(first), 1);

    const requeued = await lastEvent(events, 'failed');
    expect(requeued.data).toMatchObject({ failure: 'shutdown', retrying: true, signal: 'SIGKILL' });
    expect(await queue.getJobState(jobId)).toBe('waiting');
    expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);
  }, 30_000);
});
