import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { get, startTestGateway, type TestGateway } from '../support/sse.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';
const NOT_JSON = "{prompt: 'written by hand'";

// Something other than BullMQ (a hand-written enqueuer, a stray HSET) can leave a job whose
// data is not JSON: BullMQ throws wherever it reads one.
describe('a job whose data is not JSON', () => {
  let queueName: string;
  let redis: Redis;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let worker: TestWorker | undefined;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    redis = new Redis(redisUrl);
    client = createClient({ url: redisUrl, queueName });
    gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    // Enqueued before any worker runs, then spoilt where BullMQ keeps it.
    await client.enqueue({ prompt: 'spoilt' }, { jobId: 'spoilt', attempts: 3 });
    await redis.hset(`bull:${queueName}:spoilt`, 'data', NOT_JSON);
    await client.enqueue({ prompt: 'hello' }, { jobId: 'fine' });
  });

  afterAll(async () => {
    await worker?.worker.shutdown(0);
    await gateway.close();
    await client.close();
    redis.disconnect();
  });

  const read = async (path: string) => {
    const response = await get(`${gateway.url}${path}`, {
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    return { status: response.status, body: JSON.parse(response.body) as Record<string, unknown> };
  };

  it('reads like any other job while it waits: in the list and on its own', async () => {
    const list = await read('/jobs');
    expect(list.status).toBe(200);
    expect((list.body.jobs as { jobId: string }[]).map((job) => job.jobId).sort()).toEqual([
      'fine',
      'spoilt',
    ]);
    const one = await read('/jobs/spoilt');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ state: 'waiting', prompt: null });
    expect(one.body.request).toEqual({ unreadable: expect.stringMatching(/^it is not JSON \(/) });
  });

  it('fails at once as an invalid request saying so, without a retry, and the next job runs', async () => {
    const events = collectEvents(client.events('spoilt'));
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });

    const result = await client.result('spoilt', { timeoutMs: 30_000 });
    expect(result).toMatchObject({ success: false, failure: 'invalid-request', attempt: 1 });
    expect(result.error).toMatch(/^invalid job data: it is not JSON \(.*JSON at position 1\)$/);
    expect((await events).map((event) => event.type)).toEqual(['failed']);
    expect(await redis.hget(`bull:${queueName}:spoilt`, 'atm')).toBe('1');
    expect(await client.result('fine', { timeoutMs: 30_000 })).toMatchObject({ success: true });
  });
});
