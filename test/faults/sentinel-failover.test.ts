import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
import { startRedisSentinel, type RedisSentinel } from '../support/redis-sentinel.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
} from '../support/worker.js';

/** The numbers of the lines the run printed that reached the history. */
const printed = (events: ExecuteEvent[]): number[] =>
  events.flatMap((event) => {
    if (event.type !== 'output') return [];
    const line = JSON.parse(event.content) as { type?: string; n?: number };
    return line.type === 'steady' && line.n !== undefined ? [line.n] : [];
  });

describe('a Sentinel failover mid-run', () => {
  // A primary, a replica and a sentinel of this test's own.
  let redis: RedisSentinel;
  beforeAll(async () => {
    redis = await startRedisSentinel();
  });
  afterAll(async () => {
    await redis.close();
  });

  it('does not stop the run: every line printed is in the history or named by a gap, and the result is stored', async () => {
    const queueName = uniqueQueueName();
    const worker = await startTestWorker({
      redisUrl: redis.url,
      queueName,
      claudeBin: fixture('claude-steady.mjs'),
      // Redis replicates asynchronously: without it the last events before the switch are lost.
      env: { EVENTS_WAIT_REPLICAS: '1' },
    });
    const client = createClient({ url: redis.url, queueName });
    try {
      const jobId = randomUUID();
      const live: ExecuteEvent[] = [];
      const watching = collectEvents(client.events(jobId), live);
      await client.enqueue({ prompt: 'steady 5s' }, { jobId });
      await waitFor('some lines', () => (printed(live).length >= 10 ? true : undefined));
      const primaryBefore = await redis.primaryPort();

      await redis.failover();

      expect(await redis.primaryPort()).not.toBe(primaryBefore);
      const result = await client.result(jobId, { timeoutMs: 30_000 });
      expect(result).toMatchObject({ success: true, jobId });
      const total = Number(/printed (\d+) lines/.exec(result.finalOutput ?? '')?.[1]);
      expect(total).toBeGreaterThan(10);
      await watching;

      // Read back from the new primary: the history has every event, in order.
      const replay = await collectEvents(client.events(jobId));
      expect(replay.map((event) => event.seq)).toEqual(replay.map((_, i) => i + 1));
      const gaps = replay.flatMap((event) => (event.type === 'gap' ? [event.data.count] : []));
      const lost = gaps.reduce((sum, count) => sum + count, 0);
      const lines = printed(replay);
      expect(lines.length + lost).toBe(total);
      if (lost === 0) expect(lines).toEqual(lines.map((_, i) => i + 1));
      expect(replay.at(-1)).toMatchObject({ type: 'completed', data: { success: true } });
    } finally {
      await worker.worker.shutdown(0);
      await client.close();
    }
  });
});
