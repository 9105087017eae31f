import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyKey, type ExecuteEvent, type PubSubMode } from '../../src/contract/index.js';
import { startRedisCluster, type RedisCluster } from '../support/redis-cluster.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

/** Hash tags of queues: in either mode some fall on each master's third of the 16384 slots. */
const TAGS = ['a', 'b', 'c', 'd'];

const ticks = (events: ExecuteEvent[]): number =>
  events.filter((event) => event.type === 'output' && event.content.includes('"tick"')).length;

describe('on a Redis Cluster of three masters', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('refuses to start a worker whose queue keys have no hash tag, naming what to use', async () => {
    const worker = spawnWorkerProcess({ REDIS_URL: cluster.url, QUEUE_NAME: uniqueQueueName() });
    expect(await worker.exited).toBe(1);
    expect(worker.stderr.join('\n')).toContain(
      'has no hash tag: on a Redis Cluster every key of a queue must be in one hash slot; use a hash tag such as QUEUE_PREFIX={claudebox}',
    );
  });

  describe.each<PubSubMode>(['plain', 'sharded'])('with %s pub/sub', (pubsub) => {
    const workers: TestWorker[] = [];
    const clients: ClaudeboxClient[] = [];
    const processes: WorkerProcess[] = [];
    const queues = TAGS.map((tag) => ({
      prefix: `{cb-${pubsub}-${tag}}`,
      queueName: uniqueQueueName(),
    }));

    beforeAll(async () => {
      for (const queue of queues) {
        const env = { QUEUE_PREFIX: queue.prefix, EVENTS_PUBSUB: pubsub };
        const claudeBin = fixture('claude-slow.mjs');
        workers.push(
          await startTestWorker({
            redisUrl: cluster.url,
            queueName: queue.queueName,
            claudeBin,
            env,
          }),
        );
        clients.push(createClient({ url: cluster.url, ...queue, pubsub }));
      }
    });
    afterAll(async () => {
      for (const worker of processes.splice(0)) {
        if (worker.child.exitCode === null && worker.child.signalCode === null)
          worker.child.kill('SIGKILL');
        await worker.exited;
      }
      await Promise.all(workers.map((worker) => worker.worker.shutdown(0)));
      await Promise.all(clients.map((client) => client.close()));
    });

    it('runs jobs of queues on every master: live events, replay and results', async () => {
      const jobs = await Promise.all(
        clients.map(async (client) => {
          const jobId = randomUUID();
          const live = collectEvents(client.events(jobId));
          await client.enqueue({ prompt: 'sleep 1.2' }, { jobId });
          return { client, jobId, live };
        }),
      );
      for (const { client, jobId, live } of jobs) {
        expect(await client.result(jobId, { timeoutMs: 30_000 })).toMatchObject({
          success: true,
          finalOutput: 'slept 1.2s',
        });
        const events = await live;
        expect(ticks(events)).toBe(1);
        expect(events.at(-1)).toMatchObject({ type: 'completed' });
        expect(await collectEvents(client.events(jobId))).toEqual(events);
        expect(await collectEvents(client.events(jobId, { fromSeq: 3 }))).toEqual(events.slice(2));
      }
      // The histories are spread over the masters, as the queues' slots are.
      const holders = await mastersHolding(
        jobs.map(({ jobId }, i) => historyKey(queues[i] ?? { prefix: '', queueName: '' }, jobId)),
      );
      expect(new Set(holders).size).toBe(3);
    });

    it('cancels a running job', async () => {
      const [client] = clients;
      if (!client) throw new Error('no client');
      const jobId = randomUUID();
      const live: ExecuteEvent[] = [];
      const watching = collectEvents(client.events(jobId), live);
      await client.enqueue({ prompt: 'sleep 30' }, { jobId });
      await waitFor('the first tick', () => (ticks(live) >= 1 ? true : undefined));
      expect(await client.cancel(jobId, 'enough')).toMatchObject({ outcome: 'stopping' });
      expect(await client.result(jobId, { timeoutMs: 20_000 })).toMatchObject({
        cancelled: true,
        error: 'cancelled: enough',
      });
      expect((await watching).at(-1)).toMatchObject({ type: 'failed', data: { cancelled: true } });
    });

    it('retries a job on another worker after its worker was killed with SIGKILL', async () => {
      const queue = { prefix: `{cb-${pubsub}-killed}`, queueName: uniqueQueueName() };
      const env = {
        REDIS_URL: cluster.url,
        QUEUE_NAME: queue.queueName,
        QUEUE_PREFIX: queue.prefix,
        EVENTS_PUBSUB: pubsub,
        CLAUDE_BIN: fixture('claude-slow.mjs'),
        LOCK_DURATION_SECONDS: '2',
      };
      const client = createClient({ url: cluster.url, ...queue, pubsub });
      clients.push(client);
      const first = spawnWorkerProcess(env);
      processes.push(first);
      await first.waitForLog('worker ready');
      const jobId = randomUUID();
      const live: ExecuteEvent[] = [];
      const watching = collectEvents(client.events(jobId), live);
      await client.enqueue({ prompt: 'sleep 2' }, { jobId, attempts: 2 });
      await waitFor('the first tick', () => (ticks(live) >= 1 ? true : undefined));
      first.child.kill('SIGKILL');
      await first.exited;

      const second = spawnWorkerProcess(env);
      processes.push(second);
      expect(await client.result(jobId, { timeoutMs: 30_000 })).toMatchObject({
        success: true,
        attempt: 2,
        finalOutput: 'slept 2s',
      });
      const events = await watching;
      expect(events.map((event) => event.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((event) => event.type === 'started')).toHaveLength(2);
    });
  });

  /** The port of the master each key is on. */
  async function mastersHolding(keys: string[]): Promise<number[]> {
    const nodes = cluster.ports.map((port) => ({ host: '127.0.0.1', port }));
    const redis = new Cluster(nodes);
    try {
      await redis.ping();
      return await Promise.all(
        keys.map(async (key) => {
          for (const node of redis.nodes('master')) {
            // A master that does not serve the key's slot answers MOVED.
            if ((await node.exists(key).catch(() => 0)) === 1) return node.options.port ?? 0;
          }
          throw new Error(`${key} is on no master`);
        }),
      );
    } finally {
      redis.disconnect();
    }
  }
});
