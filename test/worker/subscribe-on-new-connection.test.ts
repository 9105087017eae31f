import { afterEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createClient } from '../../src/client/index.js';
import { sendSubscription } from '../../src/redis/subscribe.js';
import { ActiveRuns } from '../../src/worker/attempt/active-runs.js';
import { listenForCancels } from '../../src/worker/runtime/cancel-listener.js';
import { createQueue, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/**
 * A connection ioredis is still setting up (connected, the ready check not yet answered): a
 * subscription made then must still be in force once it is ready.
 */
async function connectionBeingSetUp(): Promise<Redis> {
  const redis = new Redis(redisUrl, { connectionName: 'claudebox:test' });
  opened.push(redis);
  await new Promise((resolve) => redis.once('connect', resolve));
  expect(redis.status).toBe('connect');
  return redis;
}

const opened: Redis[] = [];

afterEach(() => {
  for (const redis of opened.splice(0)) redis.disconnect();
});

describe('a subscription made while its connection is being set up', () => {
  it('receives what is published on the channel afterwards', async () => {
    const subscriber = await connectionBeingSetUp();
    const publisher = new Redis(redisUrl);
    opened.push(publisher);
    const received: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => received.push(message));

    await sendSubscription(subscriber, 'subscribe', 'subscribe-test:events:1');
    // Published until one arrives, so that a connection that comes back late is not blamed.
    await waitFor(
      'a message',
      async () => {
        await publisher.publish('subscribe-test:events:1', 'hello');
        return received.length > 0 ? true : undefined;
      },
      5000,
    );
    expect(received[0]).toBe('hello');
    expect(await publisher.pubsub('NUMSUB', 'subscribe-test:events:1')).toEqual([
      'subscribe-test:events:1',
      1,
    ]);
  });

  it("is how a worker's cancel listener hears a cancel for a job it runs", async () => {
    const queueName = uniqueQueueName();
    const queue = createQueue(redisUrl, queueName);
    const client = createClient({ url: redisUrl, queueName });
    const commands = new Redis(redisUrl);
    opened.push(commands);
    const runs = new ActiveRuns();
    try {
      const job = await queue.add('execute', { prompt: 'hi' });
      const jobId = job.id ?? '';
      const signal = runs.begin(jobId);
      const subscriber = await connectionBeingSetUp();
      const listener = await listenForCancels({
        subscriber,
        redis: commands,
        address: { prefix: 'bull', queueName },
        runs,
        logger: pino({ level: 'silent' }),
      });
      // Ready for commands: a check of cancel markers made then finds none, so only the cancel
      // message can stop the run.
      await waitFor('the connection to be ready', () =>
        subscriber.status === 'ready' ? true : undefined,
      );

      expect((await client.cancel(jobId, 'changed my mind')).outcome).toBe('cancelled');
      await waitFor('the run to be stopped', () => (signal.aborted ? true : undefined), 5000);
      expect(signal.reason).toMatchObject({ cause: 'cancelled', message: 'changed my mind' });
      await listener.close();
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
