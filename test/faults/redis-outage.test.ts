import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent, GapEvent } from '../../src/contract/index.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import {
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
  collectEvents,
} from '../support/worker.js';

const outputJson = (events: ExecuteEvent[]): Record<string, unknown>[] =>
  events.flatMap((e) =>
    e.type === 'output' ? [JSON.parse(e.content) as Record<string, unknown>] : [],
  );

describe('a Redis outage mid-run', () => {
  // A Redis of its own, persistent, that this test stops and starts again.
  let redis: RedisServer;
  let worker: TestWorker | undefined;
  let client: ClaudeboxClient;
  let queueName: string;

  beforeEach(async () => {
    redis = await startRedisServer({ persistent: true });
    queueName = uniqueQueueName();
    client = createClient({ url: redis.url, queueName });
  });

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    await client.close();
    await redis.close();
  });

  it('does not stop the run: the job completes and a replay from seq 1 has every event', async () => {
    worker = await startTestWorker({
      redisUrl: redis.url,
      queueName,
      claudeBin: fixture('claude-slow.mjs'),
    });
    const jobId = randomUUID();
    const live: ExecuteEvent[] = [];
    const watching = collectEvents(client.events(jobId), live);
    await client.enqueue({ prompt: 'sleep 16' }, { jobId });
    await waitFor('a few ticks', () => (live.length >= 4 ? true : undefined));

    await redis.stop();
    await sleep(10_000);
    await redis.start();

    const result = await client.result(jobId, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ success: true, finalOutput: 'slept 16s' });
    await watching;
    const replay = await collectEvents(client.events(jobId));

    expect(replay.map((e) => e.seq)).toEqual(replay.map((_, i) => i + 1));
    expect(replay.some((e) => e.type === 'gap')).toBe(false);
    const ticks = outputJson(replay)
      .filter((line) => line.type === 'tick')
      .map((line) => line.n);
    expect(ticks).toEqual(ticks.map((_, i) => i + 1));
    expect(ticks.length).toBeGreaterThanOrEqual(15);
    expect(live).toEqual(replay);
    const lost = worker.logs.filter((log) => log.msg === 'Redis connection lost; retrying');
    expect(lost.length).toBeGreaterThan(0);
  });

  it('past the job lock, writes nothing more of the attempt that ended meanwhile: the next attempt closes it', async () => {
    worker = await startTestWorker({
      redisUrl: redis.url,
      queueName,
      claudeBin: fixture('claude-slow.mjs'),
      env: { LOCK_DURATION_SECONDS: '2' },
    });
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'sleep 2' }, { jobId, attempts: 2 });
    await waitFor('the run to start', async () =>
      (await collectEvents(client.events(jobId, { follow: false }))).length > 0 ? true : undefined,
    );

    await redis.stop();
    // The run ends meanwhile, and its lock lapses, long before Redis is back.
    await sleep(6_000);
    await redis.start();

    const result = await client.result(jobId, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ success: true, attempt: 2 });
    const events = await collectEvents(client.events(jobId));
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const milestones = events
      .filter((e) => e.type !== 'output')
      .map((e) => `${e.attempt}:${e.type}`);
    expect(milestones).toEqual(['1:started', '1:failed', '2:started', '2:completed']);
    expect(worker.logs.map((log) => log.msg)).toContain('run stopped: the job is no longer ours');
  });

  it('past the buffer bound, drops output explicitly: a gap event names every missing seq', async () => {
    worker = await startTestWorker({
      redisUrl: redis.url,
      queueName,
      claudeBin: fixture('claude-chatty.mjs'),
      env: { EVENT_BUFFER_BYTES: String(1024 * 1024) },
    });
    const jobId = randomUUID();
    const live: ExecuteEvent[] = [];
    const watching = collectEvents(client.events(jobId), live);
    // About 1 MB a second, so a 4 s outage overflows the 1 MiB buffer four times over.
    await client.enqueue({ prompt: 'chatty 10s 100x1000' }, { jobId });
    await waitFor('some chatter', () => (live.length >= 50 ? true : undefined));

    await redis.stop();
    await sleep(4000);
    await redis.start();

    const result = await client.result(jobId, { timeoutMs: 60_000 });
    expect(result.success).toBe(true);
    await watching;
    const replay = await collectEvents(client.events(jobId));

    const gaps = replay.filter((e): e is GapEvent => e.type === 'gap');
    expect(gaps.length).toBeGreaterThan(0);
    expect(gaps.every((gap) => gap.data.reason === 'buffer-overflow')).toBe(true);
    const missing = gaps.flatMap((gap) =>
      gap.data.ranges.flatMap(({ from, to }) =>
        Array.from({ length: to - from + 1 }, (_, i) => from + i),
      ),
    );
    expect(gaps.reduce((sum, gap) => sum + gap.data.count, 0)).toBe(missing.length);
    // Every seq up to the last one is either replayed or named as lost, never both.
    const seen = replay.map((e) => e.seq);
    expect([...seen, ...missing].sort((a, b) => a - b)).toEqual(
      Array.from({ length: result.lastSeq }, (_, i) => i + 1),
    );
    expect(live).toEqual(replay);
  });
});
