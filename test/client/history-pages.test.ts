import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyFields, historyKey, type ExecuteEvent } from '../../src/contract/index.js';
import { readHistory } from '../../src/redis/history.js';
import { uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const KiB = 1024;
const MiB = 1024 * KiB;

describe('pages of a history of long lines', () => {
  let redis: Redis;
  let client: ClaudeboxClient;
  let address: { prefix: string; queueName: string };
  let jobId: string;
  /** Each line's length, by seq. */
  let lengths: number[];

  beforeEach(async () => {
    redis = new Redis(redisUrl);
    address = { prefix: 'bull', queueName: uniqueQueueName() };
    client = createClient({ connection: redis, queueName: address.queueName });
    jobId = randomUUID();
    // Forty lines of 100 KiB, one of 2 MiB, then the terminal event.
    lengths = [...Array<number>(40).fill(100 * KiB), 2 * MiB];
    const pipeline = redis.pipeline();
    const events: ExecuteEvent[] = lengths.map((length, index) => ({
      jobId,
      attempt: 1,
      seq: index + 1,
      type: 'output',
      timestamp: new Date().toISOString(),
      stream: 'stdout',
      content: 'x'.repeat(length),
    }));
    const end = {
      ...events[0],
      seq: 42,
      type: 'completed',
      data: { retrying: false, lastSeq: 42 },
    };
    for (const event of [...events, end as unknown as ExecuteEvent]) {
      const json = JSON.stringify(event);
      const fields = historyFields(event, json, Date.now());
      pipeline.xadd(historyKey(address, jobId), `${event.seq}-0`, ...fields);
    }
    await pipeline.exec();
  });
  afterEach(async () => {
    await client.close();
    redis.disconnect();
  });

  it('hold about a megabyte each, or one line alone where it is longer, and together all of it', async () => {
    const pages: number[][] = [];
    for (let from: number | null = 1; from !== null;) {
      const page = await readHistory(redis, address, jobId, from, 500, MiB);
      pages.push(page.events.map((event) => event.seq));
      from = page.next;
    }
    const lengthOf = (seq: number): number => lengths[seq - 1] ?? 0;
    for (const page of pages) {
      const bytes = page.reduce((sum, seq) => sum + lengthOf(seq), 0);
      expect(page.length === 1 || bytes <= MiB).toBe(true);
    }
    expect(pages.flat()).toEqual(Array.from({ length: 42 }, (_, i) => i + 1));
    expect(pages).toContainEqual([41]);
    // Filled, not cut at the first line: about ten lines of 100 KiB make a megabyte.
    expect(pages[0]?.length).toBeGreaterThan(5);
  });

  it('are replayed by the client whole and in order', async () => {
    const seen: number[] = [];
    for await (const event of client.events(jobId, { follow: false })) seen.push(event.seq);
    expect(seen).toEqual(Array.from({ length: 42 }, (_, i) => i + 1));
  });
});
