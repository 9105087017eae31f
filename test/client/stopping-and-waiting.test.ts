import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyFields, historyKey, type ExecuteEvent } from '../../src/contract/index.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { collectEvents, uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** A job's history written as a worker writes it: `count` output lines of attempt 1. */
async function writeHistory(redis: Redis, queueName: string, jobId: string, count: number) {
  const pipeline = redis.pipeline();
  for (let seq = 1; seq <= count; seq++) {
    const event: ExecuteEvent = {
      jobId,
      attempt: 1,
      seq,
      type: 'output',
      timestamp: new Date().toISOString(),
      stream: 'stdout',
      content: `line ${seq}`,
    };
    const fields = historyFields(event, JSON.stringify(event), Date.now());
    pipeline.xadd(historyKey({ prefix: 'bull', queueName }, jobId), `${seq}-0`, ...fields);
  }
  await pipeline.exec();
}

describe('the client', () => {
  let redis: Redis;
  let client: ClaudeboxClient;
  let queueName: string;
  let jobId: string;

  beforeEach(() => {
    redis = new Redis(redisUrl);
    queueName = uniqueQueueName();
    client = createClient({ connection: redis, queueName });
    jobId = randomUUID();
  });
  afterEach(async () => {
    await client.close().catch(() => undefined);
    redis.disconnect();
  });

  it('refuses options it cannot use, naming them', async () => {
    const refused = (options: object) => collectEvents(client.events(jobId, options));
    await expect(refused({ fromSeq: 1.5 })).rejects.toMatchObject({
      code: 'invalid-request',
      message: 'events: fromSeq must be a whole number, not 1.5',
    });
    await expect(refused({ idleCheckMs: Infinity })).rejects.toThrow(
      'events: idleCheckMs must be a number of milliseconds above 0, at most 86400000, not Infinity',
    );
    await expect(client.result(jobId, { timeoutMs: Number.NaN })).rejects.toMatchObject({
      code: 'invalid-request',
      message: 'result: timeoutMs must be a number of milliseconds from 0 (or Infinity), not NaN',
    });
  });

  it('yields nothing once its signal aborted, and stops a replay where the signal aborts it', async () => {
    await writeHistory(redis, queueName, jobId, 1200);
    const aborted = AbortSignal.abort();
    expect(await collectEvents(client.events(jobId, { signal: aborted }))).toEqual([]);

    const controller = new AbortController();
    const seen: number[] = [];
    for await (const event of client.events(jobId, { signal: controller.signal })) {
      seen.push(event.seq);
      if (event.seq === 10) controller.abort();
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });

  it('ends the iterations that follow a job when it closes, and follows none after', async () => {
    await writeHistory(redis, queueName, jobId, 3);
    const seen: number[] = [];
    // The job never ends: only the client's close ends this iteration.
    const following = (async () => {
      for await (const event of client.events(jobId, { idleCheckMs: 3_600_000 })) {
        seen.push(event.seq);
      }
    })();
    while (seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    await following;
    expect(seen).toEqual([1, 2, 3]);
    await expect(collectEvents(client.events(jobId))).rejects.toThrow('the client is closed');
  });

  it('waits on a running job by its state alone, not reading its prompt at every poll', async () => {
    const prompt = 'x'.repeat(3 * 1024 * 1024);
    const id = await client.enqueue({ prompt });
    const before = redis.stream.bytesRead;
    // No worker takes it: four seconds of polls, about ten.
    await expect(client.result(id, { timeoutMs: 4000 })).rejects.toMatchObject({
      code: 'result-timeout',
    });
    expect(redis.stream.bytesRead - before).toBeLessThan(prompt.length);
  });
});

describe('the client while Redis does not answer', () => {
  let server: RedisServer;
  let pid: number;

  beforeAll(async () => {
    server = await startRedisServer();
    const probe = new Redis(server.url);
    pid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
    probe.disconnect();
  });
  afterAll(async () => {
    process.kill(pid, 'SIGCONT');
    await server.close();
  });

  it('gives up a result at its timeoutMs and ends an iteration when its signal aborts', async () => {
    const redis = new Redis(server.url);
    const client = createClient({ connection: redis, queueName: uniqueQueueName() });
    const id = await client.enqueue({ prompt: 'waits' });
    process.kill(pid, 'SIGSTOP');
    try {
      let answered = false;
      const ping = redis.ping().then(() => (answered = true));
      await expect(client.result(id, { timeoutMs: 300 })).rejects.toMatchObject({
        code: 'result-timeout',
      });
      const controller = new AbortController();
      const events = collectEvents(client.events(id, { signal: controller.signal }));
      setTimeout(() => controller.abort(), 300);
      expect(await events).toEqual([]);
      // Both came back while Redis had answered nothing.
      expect(answered).toBe(false);
      process.kill(pid, 'SIGCONT');
      await ping;
    } finally {
      process.kill(pid, 'SIGCONT');
      await client.close();
      redis.disconnect();
    }
  });
});
