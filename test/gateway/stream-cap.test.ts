import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { createGateway } from '../../src/gateway/index.js';
import { get, startTestGateway, type TestGateway } from '../support/sse.js';
import { uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';
const auth = { authorization: `Bearer ${OPERATOR}` };

/** A stream's request, once its answer's headers came; kept open until destroyed. */
function open(url: string): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: auth }, (res) => resolve({ req, res }));
    req.on('error', reject);
    req.end();
  });
}

describe('a gateway with as many event streams open as it keeps', () => {
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let jobId: string;
  const held: ClientRequest[] = [];

  beforeAll(async () => {
    const queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    gateway = await startTestGateway({
      url: redisUrl,
      queueName,
      operatorToken: OPERATOR,
      maxStreams: 2,
    });
    // No worker takes it: its streams stay open.
    jobId = await client.enqueue({ prompt: 'waits' });
  });

  afterAll(async () => {
    held.forEach((req) => req.destroy());
    await gateway.close();
    await client.close();
  });

  const eventsUrl = () => `${gateway.url}/jobs/${jobId}/events`;

  it('answers one more 503 with Retry-After, still answers other routes, and takes one again once a stream ends', async () => {
    for (let i = 0; i < 2; i++) {
      const { req, res } = await open(eventsUrl());
      expect(res.statusCode).toBe(200);
      held.push(req);
    }

    const refused = await get(eventsUrl(), { headers: auth });
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body)).toEqual({
      error: 'too many event streams open (2): try again later',
    });
    expect((await get(`${gateway.url}/jobs/${jobId}`, { headers: auth })).status).toBe(200);

    held.shift()?.destroy();
    const again = await waitFor('a stream to be taken again', async () => {
      const { req, res } = await open(eventsUrl());
      if (res.statusCode === 200) return req;
      req.destroy();
      return undefined;
    });
    held.push(again);
  });

  it('refuses a maxStreams that is no whole number of at least 1', () => {
    for (const maxStreams of [0, 1.5, Number.NaN]) {
      expect(() => createGateway({ url: redisUrl, operatorToken: OPERATOR, maxStreams })).toThrow(
        'maxStreams: must be a whole number of streams, at least 1',
      );
    }
  });

  it('refuses a maxHeldBytes that is no whole number of at least 1', () => {
    for (const maxHeldBytes of [0, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => createGateway({ url: redisUrl, operatorToken: OPERATOR, maxHeldBytes })).toThrow(
        'maxHeldBytes: must be a whole number of bytes, at least 1',
      );
    }
  });
});
