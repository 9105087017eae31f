import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { mintReadToken } from '../../src/contract/index.js';
import { get, startTestGateway, type TestGateway } from '../support/sse.js';
import { fixture, startTestWorker, uniqueQueueName, type TestWorker } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';
const SECRET = 'a-secret-of-at-least-thirty-two-characters';

describe('who may read what through the gateway', () => {
  let queueName: string;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let mine: string;
  let other: string;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });
    client = createClient({ url: redisUrl, queueName, readTokenSecret: SECRET });
    gateway = await startTestGateway({
      url: redisUrl,
      queueName,
      operatorToken: OPERATOR,
      secret: SECRET,
    });
    mine = await client.enqueue({ prompt: 'mine' });
    other = await client.enqueue({ prompt: 'other' });
    await client.result(mine, { timeoutMs: 30_000 });
    await client.result(other, { timeoutMs: 30_000 });
  });

  afterAll(async () => {
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
  });

  const status = async (path: string, headers: Record<string, string> = {}): Promise<number> =>
    (await get(`${gateway.url}${path}`, { headers })).status;
  const errorOf = async (path: string): Promise<string> =>
    JSON.parse((await get(`${gateway.url}${path}`)).body).error;

  it('lets the operator token read every job, the list, and the events, as Bearer or ?token=', async () => {
    const bearer = { authorization: `Bearer ${OPERATOR}` };
    expect(await status('/jobs', bearer)).toBe(200);
    expect(await status(`/jobs/${mine}`, bearer)).toBe(200);
    expect(await status(`/jobs/${other}/events`, bearer)).toBe(200);
    expect(await status(`/jobs/${other}?token=${OPERATOR}`)).toBe(200);
  });

  it("lets a job's read token read that job's state and events, and nothing else", async () => {
    const token = client.readToken(mine, 60);
    expect(await status(`/jobs/${mine}?token=${token}`)).toBe(200);
    expect(await status(`/jobs/${mine}/events?token=${token}`)).toBe(200);
    expect(await status(`/jobs/${mine}`, { authorization: `Bearer ${token}` })).toBe(200);

    expect(await status(`/jobs/${other}?token=${token}`)).toBe(403);
    expect(await status(`/jobs/${other}/events?token=${token}`)).toBe(403);
    expect(await status(`/jobs?token=${token}`)).toBe(403);
    expect(await errorOf(`/jobs/${other}?token=${token}`)).toBe(
      `this token reads job ${mine} of queue ${queueName} only`,
    );
  });

  it('refuses an expired token, a forged one, one of another queue, and none, saying why', async () => {
    const expired = mintReadToken(
      { jobId: mine, queueName, expiresAt: Math.floor(Date.now() / 1000) - 5 },
      SECRET,
    );
    expect(await status(`/jobs/${mine}?token=${expired}`)).toBe(401);
    expect(await errorOf(`/jobs/${mine}?token=${expired}`)).toMatch(/^the token expired at \d{4}-/);

    const forged = mintReadToken(
      { jobId: mine, queueName, expiresAt: Math.floor(Date.now() / 1000) + 60 },
      'another-secret-of-at-least-thirty-two-chars',
    );
    expect(await status(`/jobs/${mine}?token=${forged}`)).toBe(401);
    const elsewhere = createClient({ url: redisUrl, queueName: 'elsewhere' });
    try {
      const foreign = elsewhere.readToken(mine, 60, SECRET);
      expect(await status(`/jobs/${mine}?token=${foreign}`)).toBe(403);
    } finally {
      await elsewhere.close();
    }
    const none = await get(`${gateway.url}/jobs/${mine}`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="claudebox"');
    expect(JSON.parse(none.body).error).toContain('this needs a token');
    expect(await status(`/jobs/${mine}`, { authorization: 'Bearer wrong' })).toBe(401);
    // Signed with the secret, but with an expiry no date holds: no 500 over it.
    const odd = mintReadToken({ jobId: mine, queueName, expiresAt: -1e300 }, SECRET);
    expect(await status(`/jobs/${mine}?token=${odd}`)).toBe(401);
  });

  it('says that a gateway without a secret takes no read tokens', async () => {
    const unsigned = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    try {
      const refused = await get(`${unsigned.url}/jobs/${mine}?token=${client.readToken(mine, 60)}`);
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body).error).toBe(
        'this gateway takes no read tokens (it has no GATEWAY_SECRET): use the operator token',
      );
    } finally {
      await unsigned.close();
    }
  });

  it.each(['/claudebox', 'claudebox', '/claudebox/'])(
    'sends the page at its mount (%s) without the slash to the mount with it, keeping the query',
    async (basePath) => {
      const mounted = await startTestGateway({
        url: redisUrl,
        queueName,
        operatorToken: OPERATOR,
        basePath,
      });
      try {
        const bare = await get(`${mounted.url}/claudebox?job=${mine}`);
        expect([bare.status, bare.headers.location]).toEqual([308, `/claudebox/?job=${mine}`]);
        const page = await get(`${mounted.url}/claudebox/?job=${mine}`);
        expect(page.status).toBe(200);
        expect(page.body).toContain('page.js');
        expect((await get(`${mounted.url}/claudebox/page.js`)).status).toBe(200);
      } finally {
        await mounted.close();
      }
    },
  );

  it('answers 404 for an unknown job only to a reader allowed to ask', async () => {
    expect(await status('/jobs/no-such-job', { authorization: `Bearer ${OPERATOR}` })).toBe(404);
    expect(await status('/jobs/no-such-job')).toBe(401);
  });
});
