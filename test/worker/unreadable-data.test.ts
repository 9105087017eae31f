import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { LONGEST_STRING } from '../../src/redis/job-fields.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
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

/** A queue of a test's own, with a client, a gateway and a connection on it, and its worker. */
interface Setting {
  readonly queueName: string;
  readonly url: string;
  readonly redis: Redis;
  readonly client: ClaudeboxClient;
  readonly gateway: TestGateway;
  worker?: TestWorker;
}

async function openSetting(url = redisUrl): Promise<Setting> {
  const queueName = uniqueQueueName();
  return {
    queueName,
    url,
    redis: new Redis(url),
    client: createClient({ url, queueName }),
    gateway: await startTestGateway({ url, queueName, operatorToken: OPERATOR }),
  };
}

/**
 * A setting whose queue holds job `spoilt`, enqueued before any worker runs and then spoilt where
 * BullMQ keeps it (its `field` set to `value`), and job `fine` after it.
 */
async function openSpoilt(field: string, value: string): Promise<Setting> {
  const setting = await openSetting();
  const { queueName, redis, client } = setting;
  await client.enqueue({ prompt: 'spoilt' }, { jobId: 'spoilt', attempts: 3 });
  await redis.hset(`bull:${queueName}:spoilt`, field, value);
  await client.enqueue({ prompt: 'hello' }, { jobId: 'fine' });
  return setting;
}

async function closeSetting({ worker, gateway, client, redis }: Setting): Promise<void> {
  await worker?.worker.shutdown(0);
  await gateway.close();
  await client.close();
  redis.disconnect();
}

async function readAsOperator(gateway: TestGateway, path: string) {
  const response = await get(`${gateway.url}${path}`, {
    headers: { authorization: `Bearer ${OPERATOR}` },
  });
  return { status: response.status, body: JSON.parse(response.body) as Record<string, unknown> };
}

// Something other than BullMQ (a hand-written enqueuer, a stray HSET) can leave a job a field
// of which, JSON to BullMQ, is not: BullMQ throws wherever it reads one. BullMQ's own scripts
// decode `parent` too, to end the job.
describe.each([
  { field: 'data', why: 'it is not JSON' },
  { field: 'opts', why: 'its opts cannot be read' },
  { field: 'progress', why: 'its progress cannot be read' },
  { field: 'parent', why: 'its parent cannot be read' },
])('a job whose $field is not JSON', ({ field, why }) => {
  // What JSON.parse says after it differs between Node.js versions.
  const reason = `${why} \\(.+\\)$`;
  let setting: Setting;

  beforeAll(async () => {
    setting = await openSpoilt(field, NOT_JSON);
  });

  afterAll(() => closeSetting(setting));

  it('reads like any other job while it waits: in the list and on its own', async () => {
    const { gateway } = setting;
    const list = await readAsOperator(gateway, '/jobs');
    expect(list.status).toBe(200);
    expect((list.body.jobs as { jobId: string }[]).map((job) => job.jobId).sort()).toEqual([
      'fine',
      'spoilt',
    ]);
    const one = await readAsOperator(gateway, '/jobs/spoilt');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ state: 'waiting', prompt: null });
    expect(one.body.request).toEqual({
      unreadable: expect.stringMatching(new RegExp(`^${reason}`)),
    });
  });

  it('fails at once as an invalid request saying so, without a retry, and the next job runs', async () => {
    const { queueName, redis, client } = setting;
    const events = collectEvents(client.events('spoilt'));
    setting.worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });

    const result = await client.result('spoilt', { timeoutMs: 30_000 });
    expect(result).toMatchObject({ success: false, failure: 'invalid-request', attempt: 1 });
    expect(result.error).toMatch(new RegExp(`^invalid job data: ${reason}`));
    expect((await events).map((event) => event.type)).toEqual(['failed']);
    expect(await redis.hget(`bull:${queueName}:spoilt`, 'atm')).toBe('1');
    expect(await client.result('fine', { timeoutMs: 30_000 })).toMatchObject({ success: true });
  });
});

// BullMQ's scripts add to a job's counters with HINCRBY: one that is no whole number fails them
// midway, and the job would end in no list, or be taken and put back for ever.
describe.each([
  { field: 'atm', value: 'x' },
  { field: 'ats', value: 'abc' },
  { field: 'stc', value: '1.5' },
])('a job whose $field is $value', ({ field, value }) => {
  let setting: Setting;

  beforeAll(async () => {
    setting = await openSpoilt(field, value);
  });

  afterAll(() => closeSetting(setting));

  it('fails at once as an invalid request naming the counter, and the next job runs', async () => {
    const { queueName, redis, client } = setting;
    setting.worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });

    const result = await client.result('spoilt', { timeoutMs: 30_000 });
    expect(result).toMatchObject({ success: false, failure: 'invalid-request', retrying: false });
    expect(result.error).toBe(
      `invalid job data: its ${field} (${JSON.stringify(value)}) is no whole number, where BullMQ counts the job's attempts`,
    );
    expect(await redis.hget(`bull:${queueName}:spoilt`, 'atm')).toBe('1');
    expect(await client.result('fine', { timeoutMs: 30_000 })).toMatchObject({ success: true });
  });
});

// Redis holds a field of up to 512 MB; Node.js makes no string longer than LONGEST_STRING, and
// BullMQ reads a job's fields as strings: such a job throws wherever BullMQ reads it whole. Each
// read of it moves 512 MB, so the job is read as few times as the checks need: listed once, taken
// by the worker (with the end of the job before it, the way the job above is not), and its result.
describe('a job with a field too long to read as a string', () => {
  const BYTES = LONGEST_STRING + 1;
  const reason = `its data is ${BYTES} bytes: more than the worker can read (${LONGEST_STRING} at most)`;
  let setting: Setting;
  // A Redis of its own: moving 512 MB keeps a Redis from answering anyone else for seconds.
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedisServer();
    setting = await openSetting(server.url);
    const { queueName, redis, client } = setting;
    await client.enqueue({ prompt: 'hello' }, { jobId: 'fine' });
    await client.enqueue({ prompt: 'too long' }, { jobId: 'huge', attempts: 3 });
    await redis.hset(`bull:${queueName}:huge`, 'data', Buffer.alloc(BYTES, ' '));
  }, 240_000);

  afterAll(async () => {
    await closeSetting(setting);
    await server.close();
  });

  it('is listed like any other job while it waits', async () => {
    const list = await readAsOperator(setting.gateway, '/jobs');
    expect(list.status).toBe(200);
    expect(list.body.jobs).toContainEqual(
      expect.objectContaining({ jobId: 'huge', state: 'waiting', prompt: null }),
    );
  }, 240_000);

  it('fails as an invalid request saying why, and the worker logs no trouble of its own', async () => {
    const { queueName, client } = setting;
    const worker = await startTestWorker({
      redisUrl: setting.url,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
      // Reading 512 MB on a busy machine can outlast the default lock, which the job would
      // then spend an attempt on.
      env: { LOCK_DURATION_SECONDS: '600' },
    });
    setting.worker = worker;

    expect(await client.result('fine', { timeoutMs: 30_000 })).toMatchObject({ success: true });
    const result = await client.result('huge', { timeoutMs: 230_000 });
    expect(result).toMatchObject({ success: false, failure: 'invalid-request', attempt: 1 });
    expect(result.error).toBe(`invalid job data: ${reason}`);
    expect(worker.logs.filter((line) => line.msg === 'queue error')).toEqual([]);
  }, 240_000);
});
