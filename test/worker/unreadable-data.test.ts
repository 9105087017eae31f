import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { LONGEST_STRING } from '../../src/redis/oversized-job.js';
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

async function readAsOperator(gateway: TestGateway, path: string) {
  const response = await get(`${gateway.url}${path}`, {
    headers: { authorization: `Bearer ${OPERATOR}` },
  });
  return { status: response.status, body: JSON.parse(response.body) as Record<string, unknown> };
}

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

  it('reads like any other job while it waits: in the list and on its own', async () => {
    const list = await readAsOperator(gateway, '/jobs');
    expect(list.status).toBe(200);
    expect((list.body.jobs as { jobId: string }[]).map((job) => job.jobId).sort()).toEqual([
      'fine',
      'spoilt',
    ]);
    const one = await readAsOperator(gateway, '/jobs/spoilt');
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

// Redis holds a field of up to 512 MB; Node.js makes no string longer than LONGEST_STRING, and
// BullMQ reads a job's fields as strings: such a job throws wherever BullMQ reads it whole. The
// worker (concurrency 1) takes the first on its own, and the second with the end of the job
// before it.
describe('a job with a field too long to read as a string', () => {
  const BYTES = LONGEST_STRING + 1;
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
    await client.enqueue({ prompt: 'too long' }, { jobId: 'huge', attempts: 3 });
    await spoil('huge');
    await client.enqueue({ prompt: 'hello' }, { jobId: 'fine' });
  }, 120_000);

  afterAll(async () => {
    await worker?.worker.shutdown(0);
    await gateway.close();
    await client.close();
    // Their 512 MB each go at once, not with the run's Redis.
    await redis.del(`bull:${queueName}:huge`, `bull:${queueName}:huge-next`);
    redis.disconnect();
  });

  const spoil = (jobId: string) =>
    redis.hset(`bull:${queueName}:${jobId}`, 'data', Buffer.alloc(BYTES, ' '));
  const reason = `its data is ${BYTES} bytes: more than the worker can read (${LONGEST_STRING} at most)`;

  it('reads like any other job while it waits, its request saying why it cannot be read', async () => {
    const list = await readAsOperator(gateway, '/jobs');
    expect(list.status).toBe(200);
    expect(list.body.jobs).toContainEqual(
      expect.objectContaining({ jobId: 'huge', state: 'waiting', prompt: null }),
    );
    const one = await readAsOperator(gateway, '/jobs/huge');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ state: 'waiting', request: { unreadable: reason } });
  }, 240_000);

  it('fails at once as an invalid request saying so, however the worker takes it, and the others run', async () => {
    // Enqueued only now: the listing above then reads one such job, not two (each is 512 MB).
    await client.enqueue({ prompt: 'too long' }, { jobId: 'huge-next', attempts: 3 });
    await spoil('huge-next');
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });

    for (const jobId of ['huge', 'huge-next']) {
      const result = await client.result(jobId, { timeoutMs: 110_000 });
      expect(result).toMatchObject({ success: false, failure: 'invalid-request', attempt: 1 });
      expect(result.error).toBe(`invalid job data: ${reason}`);
    }
    expect(await client.result('fine', { timeoutMs: 30_000 })).toMatchObject({ success: true });
    expect(worker.logs.filter((line) => line.msg === 'queue error')).toEqual([]);
  }, 240_000);
});
