import { describe, expect, it } from 'vitest';
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
});
