import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { resultWithoutRun, type ExecuteEvent } from '../../src/contract/index.js';
import { EventPublisher } from '../../src/worker/events/publisher.js';
import { uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/**
 * Two deployments on one Redis, told apart by QUEUE_PREFIX alone: the same queue name, and job
 * ids that BullMQ numbers alike in each.
 */
describe('deployments under different prefixes', () => {
  let connections: Redis[];
  let client: ClaudeboxClient;
  let queueName: string;
  let jobId: string;

  beforeEach(() => {
    connections = [];
    queueName = uniqueQueueName();
    jobId = randomUUID();
    client = createClient({ url: redisUrl, queueName });
  });
  afterEach(async () => {
    await client.close();
    for (const connection of connections) connection.disconnect();
  });

  /** An attempt of `jobId` as a worker of `prefix` publishes its events. */
  async function attemptUnder(prefix: string) {
    const redis = new Redis(redisUrl, { enableOfflineQueue: false });
    connections.push(redis);
    await new Promise((resolve) => redis.once('ready', resolve));
    const publisher = new EventPublisher({
      redis,
      address: { prefix, queueName },
      maxLen: 1000,
      ttlSeconds: 600,
      bufferBytes: 1024 * 1024,
    });
    return publisher.open(jobId, 1, 1);
  }

  const ended = (attempt: Awaited<ReturnType<typeof attemptUnder>>): void => {
    const fields = { jobId, attempt: 1, sessionId: null, retrying: false, startedAt: 0 };
    attempt.terminal('failed', resultWithoutRun({ ...fields, failure: 'cancelled', error: 'x' }));
  };

  it("hear none of each other's live events for a job of the same id", async () => {
    const ours = await attemptUnder('bull');
    const theirs = await attemptUnder('tenant-b');
    void ours.line('output', 'ours 1');
    await ours.flush();
    const seen: ExecuteEvent[] = [];
    const following = (async () => {
      for await (const event of client.events(jobId)) seen.push(event);
    })();
    await waitFor('our first line', () => (seen.length === 1 ? true : undefined));
    // The other deployment's run of its own job with that id, while ours is followed live.
    for (let line = 1; line <= 3; line++) void theirs.line('output', `theirs ${line}`);
    ended(theirs);
    await theirs.close();
    void ours.line('output', 'ours 2');
    ended(ours);
    await ours.close();
    await following;

    expect(seen.map((event) => ('content' in event ? event.content : event.type))).toEqual([
      'ours 1',
      'ours 2',
      'failed',
    ]);
  });
});
