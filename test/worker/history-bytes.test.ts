import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyKey, type ExecuteEvent } from '../../src/contract/index.js';
import { fixture, startTestWorker, uniqueQueueName, type TestWorker } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const MiB = 1024 * 1024;

/** The bytes of a history stream's fields and values, as XRANGE gives them. */
async function historyBytes(
  redis: Redis,
  key: string,
): Promise<{ bytes: number; entries: number }> {
  const entries = await redis.xrangeBuffer(key, '-', '+');
  const bytes = entries.reduce(
    (sum, [, fields]) => sum + fields.reduce((n, field) => n + field.length, 0),
    0,
  );
  return { bytes, entries: entries.length };
}

describe('a history past EVENTS_MAX_BYTES', () => {
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let redis: Redis;
  let queueName: string;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-flood.mjs'),
      env: { EVENTS_MAX_BYTES: String(MiB) },
    });
    client = createClient({ url: redisUrl, queueName });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    await client.close();
    await worker.worker.shutdown(0);
    await redis.quit();
  });

  it('keeps only the newest MiB of a 6 MiB run, and a replay says what went', async () => {
    const jobId = await client.enqueue({ prompt: 'flood 6' }, { jobId: randomUUID() });
    const result = await client.result(jobId, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ success: true, finalOutput: 'flooded 6 MiB' });

    const stored = await historyBytes(redis, historyKey({ prefix: 'bull', queueName }, jobId));
    expect(stored.bytes).toBeLessThanOrEqual(MiB);
    expect(stored.bytes).toBeGreaterThan(MiB / 2);

    const events: ExecuteEvent[] = [];
    for await (const event of client.events(jobId, { follow: false })) events.push(event);
    const [gap, ...rest] = events;
    expect(gap).toMatchObject({ type: 'gap', seq: 1, data: { reason: 'trimmed' } });
    // After the gap, every event to the terminal one, none missing.
    const seqs = rest.map((event) => event.seq);
    expect(seqs).toEqual(seqs.map((_, index) => (seqs[0] ?? 0) + index));
    expect(rest.at(-1)).toMatchObject({ type: 'completed', seq: result.lastSeq });
  });
});
