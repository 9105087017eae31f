import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { createQueue, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const MiB = 1024 * 1024;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

describe('an output flood', () => {
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    worker?.child.kill('SIGTERM');
    await worker?.exited;
  });

  it(
    'of 1 GiB keeps the worker under 256 MB and 1.7× its idle RSS, the stored output capped, and other jobs’ events flowing',
    async () => {
      const queueName = uniqueQueueName();
      // One worker runs both jobs, so its fake CLI picks the behaviour by prompt.
      worker = spawnWorkerProcess({
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-dispatch.mjs'),
        CONCURRENCY: '2',
        EVENTS_MAX_LEN: '1000',
      });
      await worker.waitForLog('worker ready');
      const pid = worker.pid;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const idle = rssBytes(pid);
      const client = createClient({ url: redisUrl, queueName });
      const queue = createQueue(redisUrl, queueName);
      let peak = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssBytes(pid));
      }, 100);
      try {
        const flood = await client.enqueue({ prompt: 'flood 1024' }, { jobId: randomUUID() });
        await waitFor('the flood to start', async () =>
          (await queue.getJobState(flood)) === 'active' ? true : undefined,
        );

        // A second job while the flood goes on: its events must not wait for the flood's.
        const order: string[] = [];
        const ticker = randomUUID();
        const tickerEvents = (async () => {
          for await (const event of client.events(ticker)) order.push(`ticker:${event.type}`);
        })();
        await client.enqueue({ prompt: 'sleep 2' }, { jobId: ticker });
        await tickerEvents;
        const floodStateWhenTickerEnded = await queue.getJobState(flood);

        const result = await client.result(flood, { timeoutMs: 10 * 60_000 });
        clearInterval(sampler);

        expect(result).toMatchObject({
          success: true,
          finalOutput: 'flooded 1024 MiB',
          outputTruncated: true,
        });
        expect(result.outputBytes).toBeGreaterThan(1024 * MiB);
        expect(Buffer.byteLength(result.output)).toBeLessThan(64 * 1024 + 200);
        expect(order.at(-1)).toBe('ticker:completed');
        expect(floodStateWhenTickerEnded).toBe('active');
        const growth = `peak RSS ${(peak / MiB).toFixed(1)} MiB, idle ${(idle / MiB).toFixed(1)} MiB`;
        console.log(`flood: worker ${growth}`);
        expect(peak).toBeGreaterThan(0);
        expect(peak).toBeLessThan(256 * 1000 * 1000);
        // The heap's growth is bounded (src/cli/heap-growth.ts): about 1.4x alone, 1.47x during
        // the whole suite, 1.9-2x without.
        expect(peak / idle, growth).toBeLessThan(1.7);
      } finally {
        clearInterval(sampler);
        await client.close();
        await queue.obliterate({ force: true });
        await queue.close();
      }
    },
    15 * 60_000,
  );
});
