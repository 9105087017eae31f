import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
import {
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
  collectEvents,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('event replay', () => {
  let client: ClaudeboxClient;
  let worker: TestWorker;
  let queueName: string;

  beforeEach(async () => {
    queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture('claude-slow.mjs') });
  });

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await client.close();
  });

  it('gives a subscriber that joins mid-run and one that joins after the end exactly what an early one saw', async () => {
    const jobId = randomUUID();
    const early = collectEvents(client.events(jobId));
    await client.enqueue({ prompt: 'sleep 3' }, { jobId });

    const earlySoFar: ExecuteEvent[] = [];
    const watching = collectEvents(client.events(jobId), earlySoFar);
    await waitFor('a few events', () => (earlySoFar.length >= 3 ? true : undefined));
    const midRun = collectEvents(client.events(jobId));

    const earlyEvents = await early;
    const midRunEvents = await midRun;
    await watching;
    const afterEnd = await collectEvents(client.events(jobId));

    // init line, a tick per second (two or three of them), result line
    const types = earlyEvents.map((e) => e.type);
    expect(types[0]).toBe('started');
    expect(types.at(-1)).toBe('completed');
    expect(types.slice(1, -1).every((type) => type === 'output')).toBe(true);
    expect(earlyEvents.length).toBeGreaterThanOrEqual(6);
    expect(earlyEvents.map((e) => e.seq)).toEqual(earlyEvents.map((_, i) => i + 1));
    expect(midRunEvents).toEqual(earlyEvents);
    expect(afterEnd).toEqual(earlyEvents);
    const terminal = earlyEvents.at(-1);
    expect(terminal?.type === 'completed' && terminal.data.lastSeq).toBe(terminal?.seq);
  });

  it('starts from the asked seq, and ends at once when asked past the end of a finished job', async () => {
    const jobId = await client.enqueue({ prompt: 'sleep 1' });
    await client.result(jobId, { timeoutMs: 20_000 });

    const all = await collectEvents(client.events(jobId));
    const fromThree = await collectEvents(client.events(jobId, { fromSeq: 3 }));
    expect(fromThree).toEqual(all.slice(2));
    // An hour of idle time before a state check: ending at once shows it did not need one.
    expect(
      await collectEvents(
        client.events(jobId, { fromSeq: all.length + 1, idleCheckMs: 3_600_000 }),
      ),
    ).toEqual([]);
  });

  it('without following, gives what the history holds now and ends', async () => {
    const jobId = randomUUID();
    const live: ExecuteEvent[] = [];
    const watching = collectEvents(client.events(jobId), live);
    // Long enough to be going on when it is read, however busy the machine; cancelled after.
    await client.enqueue({ prompt: 'sleep 60' }, { jobId });
    await waitFor('a few events', () => (live.length >= 3 ? true : undefined));

    const now = await collectEvents(client.events(jobId, { follow: false }));
    expect(now.length).toBeGreaterThanOrEqual(3);
    expect(now.at(-1)?.type).not.toBe('completed');
    expect(now).toEqual(live.slice(0, now.length));
    await client.cancel(jobId);
    await watching;
  });

  it('returns the ExecuteResult of a completed job', async () => {
    const jobId = await client.enqueue({ prompt: 'sleep 1' });
    const result = await client.result(jobId, { timeoutMs: 20_000 });
    expect(result).toMatchObject({ jobId, success: true, finalOutput: 'slept 1s', attempt: 1 });
  });

  it('says a job does not exist instead of waiting for it forever', async () => {
    const events = collectEvents(client.events('no-such-job', { idleCheckMs: 3_600_000 }));
    await expect(events).rejects.toThrow('job no-such-job not found');
    await expect(client.result('no-such-job')).rejects.toThrow('job no-such-job not found');
    await expect(client.result('no-such-job', null)).rejects.toThrow('job no-such-job not found');
    // Names of the queue's own keys, here where they exist (a job ran), are no jobs either.
    await client.result(await client.enqueue({ prompt: 'sleep 0' }), { timeoutMs: 20_000 });
    for (const name of ['events', 'id', 'meta', 'stalled-check']) {
      await expect(client.result(name)).rejects.toThrow(`job ${name} not found`);
      expect(await client.cancel(name)).toEqual({ jobId: name, outcome: 'not-found' });
    }
    await expect(
      collectEvents(client.events('no-such-job', { signal: {} as AbortSignal })),
    ).rejects.toThrow('events: signal must be an AbortSignal');
    // No options, as a caller in JavaScript can say it.
    await expect(collectEvents(client.events('no-such-job', null as never))).rejects.toThrow(
      'job no-such-job not found',
    );
  });
});

describe('enqueue', () => {
  it('rejects a bad request before anything reaches Redis, naming each bad field', async () => {
    // Nothing listens on port 1: any Redis command would fail or hang instead.
    const client = createClient({ url: 'redis://127.0.0.1:1', queueName: uniqueQueueName() });
    try {
      await expect(
        client.enqueue({ prompt: '', timeout: -5, workingDir: 'x' }),
      ).rejects.toMatchObject({
        name: 'ClaudeboxError',
        code: 'invalid-request',
        message:
          'invalid request: prompt: must not be empty; timeout: must be a positive number of seconds',
      });
      await expect(client.enqueue({ prompt: 'ok', nope: true } as never)).rejects.toThrow(
        'invalid request: nope: unknown field',
      );
      // One command-line argument: Linux would refuse it at spawn, on every attempt.
      await expect(
        client.enqueue({
          prompt: 'ok',
          allowedTools: Array(1000).fill(`Bash(${'x'.repeat(100)}:*)`),
        }),
      ).rejects.toThrow('invalid request: allowedTools: must be at most 65536 bytes');
      // The id is in every event and key of the job, and in its run's environment.
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: 'j'.repeat(257) })).rejects.toThrow(
        'invalid request: jobId: is 257 characters, over the limit of 256',
      );
      // BullMQ refuses these itself, with no word of which option is wrong.
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: '42' })).rejects.toMatchObject({
        code: 'invalid-request',
        message:
          'invalid request: jobId: must not be a whole number (42): BullMQ numbers the jobs given no id so',
      });
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: 'a:b' })).rejects.toThrow(
        "invalid request: jobId: must not contain ':'",
      );
      // The hash of such a job would be written over the queue's own keys: no job could be added
      // or finish after it.
      for (const jobId of ['wait', 'completed', 'events', 'meta']) {
        await expect(client.enqueue({ prompt: 'ok' }, { jobId })).rejects.toMatchObject({
          code: 'invalid-request',
          message: `invalid request: jobId: "${jobId}" names one of BullMQ's own keys of the queue, which the job would be written over`,
        });
      }
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: '..' })).rejects.toThrow(
        'invalid request: jobId: must not be ".."',
      );
      // Redis would refuse these, naming none of them.
      await expect(client.enqueue({ prompt: 'ok' }, { delay: NaN })).rejects.toMatchObject({
        code: 'invalid-request',
        message: 'invalid request: options.delay: must be finite',
      });
      await expect(
        client.enqueue({ prompt: 'ok' }, { backoff: { type: 'fixed', delay: Infinity } }),
      ).rejects.toThrow('invalid request: options.backoff.delay: must be finite');
      // No worker has a strategy of another name: it could retry the job after no failure.
      await expect(
        client.enqueue({ prompt: 'ok' }, { attempts: 3, backoff: { type: 'weird', delay: 1 } }),
      ).rejects.toMatchObject({
        code: 'invalid-request',
        message: `invalid request: options.backoff.type: must be 'fixed' or 'exponential', not "weird"`,
      });
      // BullMQ would throw a plain Error of its own.
      for (const priority of [1e9, 1.5, -1]) {
        await expect(client.enqueue({ prompt: 'ok' }, { priority })).rejects.toMatchObject({
          code: 'invalid-request',
          message: 'invalid request: options.priority: must be a whole number from 0 to 2097151',
        });
      }
      await expect(client.enqueue({ prompt: 'ok' }, { backoff: 'nope' as never })).rejects.toThrow(
        "options.backoff: must be a number of ms or { type: 'fixed' | 'exponential', delay }",
      );
      // What BullMQ's own check refuses, before anything is written.
      await expect(
        client.enqueue({ prompt: 'x'.repeat(200) }, { sizeLimit: 100 }),
      ).rejects.toMatchObject({
        code: 'invalid-request',
        message:
          'invalid request: options: The size of job execute exceeds the limit 100 bytes (BullMQ refuses it)',
      });
      await expect(
        client.enqueue(
          { prompt: 'ok' },
          {
            parent: { id: 'p', queue: 'bull:q' },
            failParentOnFailure: true,
            ignoreDependencyOnFailure: true,
          },
        ),
      ).rejects.toThrow(
        'invalid request: options: The following options cannot be used together: failParentOnFailure, ignoreDependencyOnFailure',
      );
      await expect(
        client.enqueue({ prompt: 'ok' }, { deduplication: {} as never }),
      ).rejects.toThrow('invalid request: options: Deduplication id must be provided');
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: '0:a:b' })).rejects.toThrow(
        "invalid request: jobId: must not be '0' or start with '0:'",
      );
      // As a caller in JavaScript can pass them.
      await expect(client.enqueue({ prompt: ' ' }, null as never)).rejects.toThrow(
        'invalid request: prompt: must not be empty',
      );
      await expect(client.enqueue({ prompt: 'ok' }, { jobId: 5 as never })).rejects.toMatchObject({
        code: 'invalid-request',
        message: 'invalid request: jobId: must be a string, not number',
      });
    } finally {
      await client.close().catch(() => undefined);
    }
  });
});
