import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyKey, type ExecuteEvent } from '../../src/contract/index.js';
import { get, startTestGateway, type TestGateway } from '../support/sse.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';

describe('events of a job whose history expired', () => {
  let client: ClaudeboxClient;
  let worker: TestWorker;
  let redis: Redis;
  let gateway: TestGateway;
  const jobId = randomUUID();
  let lastSeq: number;

  beforeAll(async () => {
    const queueName = uniqueQueueName();
    redis = new Redis(redisUrl);
    gateway = await startTestGateway({ url: redisUrl, queueName, operatorToken: OPERATOR });
    client = createClient({ url: redisUrl, queueName });
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-slow.mjs'),
      env: { EVENTS_TTL_SECONDS: '1' },
    });
    await client.enqueue({ prompt: 'sleep 0' }, { jobId });
    ({ lastSeq } = await client.result(jobId, { timeoutMs: 30_000 }));
    // Redis expires the history a second after the job's end; the job itself is kept.
    const key = historyKey({ prefix: 'bull', queueName }, jobId);
    await waitFor('the history to expire', async () =>
      (await redis.exists(key)) === 0 ? true : undefined,
    );
  });

  afterAll(async () => {
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
    await redis.quit();
  });

  const gapOf = (events: ExecuteEvent[]) =>
    events.map((e) => (e.type === 'gap' ? { seq: e.seq, ...e.data } : e.type));

  it('names the events it no longer holds with a gap, then ends at once', async () => {
    expect(lastSeq).toBeGreaterThanOrEqual(3);
    // A quiet stream would look at the job's state only after this long: far past the test's.
    const events = await collectEvents(client.events(jobId, { idleCheckMs: 600_000 }));
    expect(gapOf(events)).toEqual([
      { seq: 1, ranges: [{ from: 1, to: lastSeq }], count: lastSeq, reason: 'trimmed' },
    ]);
  });

  it('names only those from the asked seq on, and nothing past the end', async () => {
    const fromTwo = await collectEvents(client.events(jobId, { fromSeq: 2, follow: false }));
    expect(gapOf(fromTwo)).toEqual([
      { seq: 2, ranges: [{ from: 2, to: lastSeq }], count: lastSeq - 1, reason: 'trimmed' },
    ]);
    const pastTheEnd = client.events(jobId, { fromSeq: lastSeq + 1, idleCheckMs: 600_000 });
    expect(await collectEvents(pastTheEnd)).toEqual([]);
  });

  it('sends the gap over HTTP with the last seq it names as its id; a reconnection after it gets 204', async () => {
    const url = `${gateway.url}/jobs/${jobId}/events`;
    const auth = { authorization: `Bearer ${OPERATOR}` };
    const response = await get(url, { headers: auth });
    expect(response.status).toBe(200);
    expect(response.messages.map(({ id, event }) => ({ id, event }))).toEqual([
      { id: String(lastSeq), event: 'gap' },
      { id: undefined, event: 'end' },
    ]);
    const again = await get(url, { headers: { ...auth, 'last-event-id': String(lastSeq) } });
    expect(again.status).toBe(204);
  });
});
