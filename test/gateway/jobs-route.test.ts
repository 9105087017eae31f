import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { get, startTestGateway, type TestGateway } from '../support/sse.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';

describe('GET /jobs and GET /jobs/:id', () => {
  let queueName: string;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  const ids: string[] = [];

  beforeAll(async () => {
    queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-dispatch.mjs'),
    });
    client = createClient({ url: redisUrl, queueName });
    gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    for (const prompt of ['slow: sleep 0.1', 'slow: sleep 0.2', 'slow: sleep 0.3']) {
      ids.push(await client.enqueue({ prompt }));
    }
    for (const id of ids) await client.result(id, { timeoutMs: 30_000 });
    // One more that fails: cancelled before a worker takes it, or while it runs.
    ids.push(await client.enqueue({ prompt: 'slow: sleep 5' }, { jobId: 'will-fail' }));
    await client.cancel('will-fail');
    await client.result('will-fail', { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
  });

  interface Answer {
    status: number;
    body: {
      jobs: { jobId: string; startedAt: string | null }[];
      nextCursor: string | null;
      error: string;
      result: unknown;
      runState: unknown;
    };
  }
  const read = async (path: string): Promise<Answer> => {
    const response = await get(`${gateway.url}${path}`, {
      headers: { authorization: `Bearer ${OPERATOR}` },
    });
    return { status: response.status, body: JSON.parse(response.body) };
  };

  it("gives a finished job's state, request and ExecuteResult, as the client reads them", async () => {
    const [first] = ids;
    const { status, body } = await read(`/jobs/${first}`);

    expect(status).toBe(200);
    expect(body).toMatchObject({
      jobId: first,
      state: 'completed',
      prompt: 'slow: sleep 0.1',
      request: { prompt: 'slow: sleep 0.1' },
      success: true,
      failure: null,
      attempt: 1,
    });
    expect(body.result).toEqual(await client.result(first ?? ''));
    expect(body.runState).toMatchObject({ attempt: 1, pid: null });
  });

  it("gives a failed job's ExecuteResult from its run state", async () => {
    const { body } = await read('/jobs/will-fail');
    expect(body).toMatchObject({ state: 'failed', success: false, failure: 'cancelled' });
    expect(body.result).toEqual(await client.result('will-fail'));
  });

  it('lists recent jobs newest first, in pages, filtered by state', async () => {
    const all = await read('/jobs');
    expect(all.body.jobs.map((job) => job.jobId)).toEqual([...ids].reverse());
    expect(all.body.nextCursor).toBeNull();

    const pages: string[] = [];
    let cursor: string | null = '0';
    while (cursor !== null) {
      const page: Answer = await read(`/jobs?limit=3&cursor=${cursor}`);
      pages.push(...page.body.jobs.map((job) => job.jobId));
      cursor = page.body.nextCursor;
    }
    expect(pages).toEqual([...ids].reverse());

    // Each as GET /jobs/:id gives it, but for its request, run state and result.
    const listed = all.body.jobs.find((job) => job.jobId === ids[2]);
    const { body: detail } = await read(`/jobs/${ids[2] ?? ''}`);
    const full = ['request', 'runState', 'result'];
    const summary = Object.entries(detail).filter(([key]) => !full.includes(key));
    expect(listed).toEqual(Object.fromEntries(summary));
    expect(listed?.startedAt).toEqual(expect.any(String));

    const failed = await read('/jobs?state=failed');
    expect(failed.body.jobs).toEqual([
      expect.objectContaining({ jobId: 'will-fail', state: 'failed', failure: 'cancelled' }),
    ]);
  });

  it('refuses a bad query, naming the parameter', async () => {
    expect(await read('/jobs?limit=1000')).toEqual({
      status: 400,
      body: { error: 'limit: must be at most 100' },
    });
    const state = await read('/jobs?state=finished');
    expect(state.status).toBe(400);
    expect(state.body.error).toMatch(/^state: must be one of active, /);
    for (const limit of ['', '0x10', '1e1', '2.5']) {
      expect(await read(`/jobs?limit=${limit}`)).toEqual({
        status: 400,
        body: { error: 'limit: must be a whole number' },
      });
    }
    expect(await read('/jobs?state=completed&state=failed')).toEqual({
      status: 400,
      body: { error: 'state: must be given once' },
    });
  });

  it('refuses a cursor past the furthest a list reaches back, which would load every job', async () => {
    expect(await read('/jobs?cursor=999999')).toEqual({
      status: 400,
      body: { error: 'cursor: must be at most 1000: a list reaches no further back' },
    });
    expect(await read('/jobs?cursor=1000')).toMatchObject({
      status: 200,
      body: { jobs: [], nextCursor: null },
    });
  });
});

describe('GET /jobs over jobs that finish in another order than they came', () => {
  it('lists the finished ones most recently finished first, each once however it pages', async () => {
    const queueName = uniqueQueueName();
    const worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-dispatch.mjs'),
      env: { CONCURRENCY: '3' },
    });
    const client = createClient({ url: redisUrl, queueName });
    const gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    try {
      // Run at once, the last to come ends first.
      const ids: string[] = [];
      for (const prompt of ['slow: sleep 1.5', 'slow: sleep 0.8', 'slow: sleep 0.1']) {
        ids.push(await client.enqueue({ prompt }));
      }
      for (const id of ids) await client.result(id, { timeoutMs: 30_000 });
      const pages: string[] = [];
      for (let cursor: string | null = '0'; cursor !== null;) {
        const response = await get(`${gateway.url}/jobs?limit=1&cursor=${cursor}`, {
          headers: { authorization: `Bearer ${OPERATOR}` },
        });
        const body = JSON.parse(response.body) as {
          jobs: { jobId: string }[];
          nextCursor: string | null;
        };
        pages.push(...body.jobs.map((job) => job.jobId));
        cursor = body.nextCursor;
      }
      expect(pages).toEqual(ids);
    } finally {
      await gateway.close();
      await worker.worker.shutdown(0);
      await client.close();
    }
  });
});

describe('GET /jobs deep in the finished jobs', () => {
  it('reads the jobs of the page alone, not every job before it', async () => {
    const queueName = uniqueQueueName();
    const redis = new Redis(redisUrl);
    const gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    try {
      for (let at = 0; at < 12; at++) {
        const key = `bull:${queueName}:j${at}`;
        // The jobs before the page are no hashes at all: reading one would fail the page.
        if (at >= 4) await redis.set(key, 'not a job');
        else {
          await redis.hset(key, {
            name: 'execute',
            data: '{"prompt":"x"}',
            timestamp: String(at),
            finishedOn: String(at),
          });
        }
        await redis.zadd(`bull:${queueName}:completed`, at, `j${at}`);
      }
      const response = await get(`${gateway.url}/jobs?state=completed&cursor=8&limit=2`, {
        headers: { authorization: `Bearer ${OPERATOR}` },
      });
      expect(response.status).toBe(200);
      const body = JSON.parse(response.body) as { jobs: { jobId: string }[] };
      expect(body.jobs.map((job) => job.jobId)).toEqual(['j3', 'j2']);
    } finally {
      await gateway.close();
      redis.disconnect();
    }
  });
});

describe('GET /jobs over jobs that wait their turn', () => {
  it('lists the prioritized and the delayed in the order they will run, and a job written by hand without a creation time', async () => {
    const queueName = uniqueQueueName();
    const queue = createQueue(redisUrl, queueName);
    const redis = new Redis(redisUrl);
    const gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    const list = async (state: string): Promise<{ jobId: string; createdAt: string | null }[]> => {
      const response = await get(`${gateway.url}/jobs?state=${state}`, {
        headers: { authorization: `Bearer ${OPERATOR}` },
      });
      expect(response.status).toBe(200);
      return (JSON.parse(response.body) as { jobs: { jobId: string; createdAt: string | null }[] })
        .jobs;
    };
    try {
      for (const priority of [3, 1, 2]) {
        await queue.add('execute', { prompt: 'p' }, { jobId: `p${priority}`, priority });
      }
      for (const seconds of [100, 300, 200]) {
        await queue.add(
          'execute',
          { prompt: 'd' },
          { jobId: `d${seconds}`, delay: seconds * 1000 },
        );
      }
      expect((await list('prioritized')).map((job) => job.jobId)).toEqual(['p1', 'p2', 'p3']);
      expect((await list('delayed')).map((job) => job.jobId)).toEqual(['d100', 'd200', 'd300']);

      // No timestamp, as a hand-written enqueuer can leave it, among jobs that have one.
      await queue.add('execute', { prompt: 'w' }, { jobId: 'stamped' });
      await redis.hset(`bull:${queueName}:unstamped`, {
        name: 'execute',
        data: '{"prompt":"by hand"}',
        opts: '{}',
      });
      await redis.lpush(`bull:${queueName}:wait`, 'unstamped');
      expect(await list('waiting')).toEqual([
        expect.objectContaining({ jobId: 'unstamped', createdAt: null }),
        expect.objectContaining({ jobId: 'stamped', createdAt: expect.any(String) }),
      ]);
      const one = await get(`${gateway.url}/jobs/unstamped`, {
        headers: { authorization: `Bearer ${OPERATOR}` },
      });
      expect(one.status).toBe(200);
      expect(JSON.parse(one.body)).toMatchObject({ jobId: 'unstamped', createdAt: null });

      // Finished so, or started past the last time a Date can show: the result, made up of what
      // is there, says it failed unseen.
      await redis.hset(`bull:${queueName}:ended`, { name: 'execute', data: '{"prompt":"x"}' });
      await redis.hset(`bull:${queueName}:late`, {
        name: 'execute',
        data: '{"prompt":"x"}',
        processedOn: '99999999999999999',
      });
      await redis.zadd(`bull:${queueName}:failed`, 6, 'ended', 7, 'late');
      expect((await list('failed')).map((job) => job.jobId)).toEqual(['late', 'ended']);
      for (const jobId of ['ended', 'late']) {
        const ended = await get(`${gateway.url}/jobs/${jobId}`, {
          headers: { authorization: `Bearer ${OPERATOR}` },
        });
        expect(ended.status).toBe(200);
        expect(JSON.parse(ended.body)).toMatchObject({
          jobId,
          result: { success: false, startedAt: '1970-01-01T00:00:00.000Z' },
        });
      }
    } finally {
      await gateway.close();
      await queue.obliterate({ force: true });
      await queue.close();
      redis.disconnect();
    }
  });
});
