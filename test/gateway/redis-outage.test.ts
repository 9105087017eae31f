import { request, type IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { startRedisServer } from '../support/redis-server.js';
import { get, startTestGateway } from '../support/sse.js';
import { waitFor } from '../support/worker.js';

const OPERATOR = 'operator-token-for-the-tests';
const headers = { authorization: `Bearer ${OPERATOR}` };

describe('the gateway while its Redis is away', () => {
  it('answers with an error naming the trouble instead of waiting, and serves again once Redis is back', async () => {
    // A Redis of its own, which the test stops: the other tests' goes on.
    const redis = await startRedisServer();
    const gateway = await startTestGateway({
      url: redis.url,
      queueName: 'outage',
      operatorToken: OPERATOR,
    });
    try {
      expect((await get(`${gateway.url}/jobs/none`, { headers })).status).toBe(404);
      await redis.stop();
      const during = await get(`${gateway.url}/jobs/none`, { headers });
      expect(during.status).toBe(500);
      expect(during.body).toContain('the gateway failed');
      await redis.start();
      await waitFor('the gateway to answer again', async () =>
        (await get(`${gateway.url}/jobs/none`, { headers })).status === 404 ? true : undefined,
      );
    } finally {
      await gateway.close();
      await redis.close();
    }
  }, 60_000);

  it('opens no event stream while Redis is away, and closes with streams open through the outage', async () => {
    const redis = await startRedisServer();
    const client = createClient({ url: redis.url, queueName: 'outage-streams' });
    const gateway = await startTestGateway({
      url: redis.url,
      queueName: 'outage-streams',
      operatorToken: OPERATOR,
    });
    try {
      const jobId = await client.enqueue({ prompt: 'waits for a worker' });
      await client.close();
      const events = `${gateway.url}/jobs/${jobId}/events`;
      // A stream open before the outage: it waits for Redis, as a follower does.
      const open = await new Promise<IncomingMessage>((resolve, reject) => {
        request(events, { headers }, resolve).on('error', reject).end();
      });
      expect(open.statusCode).toBe(200);
      const ended = new Promise((resolve) => open.on('close', resolve).resume());
      await redis.stop();
      const during = await get(events, { headers });
      expect(during.status).toBe(500);
      expect(during.body).toContain('the gateway failed');
      // The open stream checks its job's state after 5 s without events: that check waits for
      // Redis, and a close must not wait behind it.
      await sleep(6000);
      await gateway.close();
      await ended;
    } finally {
      await gateway.close();
      await redis.close();
    }
  }, 60_000);
});
