import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findFreePort, startRedisServer, type RedisServer } from '../support/redis-server.js';
import {
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';
import { REDIS_PROBE_INTERVAL_MS } from '../../src/worker/runtime/readiness.js';

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe('health endpoints', () => {
  let redis: RedisServer;
  let worker: TestWorker;
  let base: string;

  beforeEach(async () => {
    redis = await startRedisServer({ persistent: true });
    const port = await findFreePort();
    worker = await startTestWorker({
      redisUrl: redis.url,
      queueName: uniqueQueueName(),
      claudeBin: fixture('claude-success.mjs'),
      env: { HEALTH_PORT: String(port), HEALTH_HOST: '127.0.0.1' },
    });
    base = `http://127.0.0.1:${port}`;
  });

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await redis.close();
  });

  it('says alive and ready while the worker consumes, and serves Prometheus metrics', async () => {
    expect(worker.worker.healthUrl).toBe(base);
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: '{"status":"ok"}' });
    const ready = await get(`${base}/readyz`);
    expect(ready.status, ready.body).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({
      ready: true,
      checks: { consuming: true, blockingConnection: true, redis: true, events: true },
      // The tests run as root, with bwrap installed: runs get a uid and namespaces of their own.
      isolation: { mode: 'uid', namespaces: ['pid', 'ipc', 'mount'] },
    });
    const metrics = await get(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('claudebox_runs_active 0');
    expect(metrics.body).toContain('claudebox_attempts_finished_total');
    expect(metrics.body).toMatch(/bullmq_job_count\{queue="test-[^"]+", state="waiting"\} 0/);
    expect((await get(`${base}/nope`)).status).toBe(404);
  });

  it('is not ready while Redis is away, stays alive, and is ready again when Redis is back', async () => {
    await redis.stop();
    const down = await waitFor('readyz to fail', async () => {
      const answer = await get(`${base}/readyz`);
      return answer.status === 503 ? answer : undefined;
    });
    expect(JSON.parse(down.body).ready).toBe(false);
    expect((await get(`${base}/healthz`)).status).toBe(200);

    await redis.start();
    await waitFor('readyz to pass again', async () =>
      (await get(`${base}/readyz`)).status === 200 ? true : undefined,
    );
  });

  it('answers /readyz and /metrics from what it knows: 400 requests cost Redis no more than none', async () => {
    const admin = new Redis(redis.url);
    /** The commands the worker sent Redis while `work` went on, by name (our own left out). */
    const commandsDuring = async (work: () => Promise<unknown>): Promise<Map<string, number>> => {
      await admin.config('RESETSTAT');
      await work();
      const stats = await admin.info('commandstats');
      const calls = new Map<string, number>();
      for (const [, name, count] of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        if (name !== 'config' && name !== 'info') calls.set(name ?? '', Number(count));
      }
      return calls;
    };
    const total = (calls: Map<string, number>): number =>
      [...calls.values()].reduce((sum, count) => sum + count, 0);
    try {
      let elapsed = 0;
      const hammered = await commandsDuring(async () => {
        const started = Date.now();
        for (let round = 0; round < 20; round++) {
          const answers = await Promise.all(
            Array.from({ length: 10 }, () => [
              get(`${base}/readyz`),
              get(`${base}/metrics`),
            ]).flat(),
          );
          expect(answers.every((answer) => answer.status === 200)).toBe(true);
        }
        elapsed = Date.now() - started;
      });
      const idle = await commandsDuring(
        () => new Promise((resolve) => setTimeout(resolve, elapsed)),
      );
      // Served per request, 400 requests would cost 200 PINGs and 200 rounds of job counts.
      const periods = Math.ceil(elapsed / REDIS_PROBE_INTERVAL_MS) + 1;
      expect(hammered.get('ping') ?? 0).toBeLessThanOrEqual(periods + 1);
      expect(total(hammered)).toBeLessThanOrEqual(total(idle) + 20 * periods);
    } finally {
      admin.disconnect();
    }
  });
});
