import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { readRunState } from '../../src/contract/index.js';
import {
  collectEvents,
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const KiB = 1024;
const MiB = 1024 * KiB;

/** What a key takes in Redis, every element counted. */
async function memoryUsage(redis: Redis, key: string): Promise<number> {
  return Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
}

describe("a job's footprint in Redis", () => {
  let queueName: string;
  let queue: Queue;
  let redis: Redis;
  let client: ClaudeboxClient;
  let worker: TestWorker | undefined;

  beforeEach(() => {
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    redis = new Redis(redisUrl);
  });

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    worker = undefined;
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
    await redis.quit();
  });

  async function start(
    env: Record<string, string> = {},
    claudeBin = fixture('claude-chatty.mjs'),
  ): Promise<void> {
    worker = await startTestWorker({ redisUrl, queueName, claudeBin, env });
    // Opened after the worker, as a control plane's client may be: it must not reset the
    // worker's cap of BullMQ's event stream.
    client = createClient({ url: redisUrl, queueName });
  }

  it('keeps a 1 MB run’s result once, small beside its output, on the job and in BullMQ’s events', async () => {
    await start();
    // 5,000 lines of about 215 bytes.
    const jobId = await client.enqueue({ prompt: 'chatty 1s 500x200' }, { jobId: randomUUID() });
    const result = await client.result(jobId, { timeoutMs: 60_000 });

    expect(result.success).toBe(true);
    expect(result.outputBytes).toBeGreaterThan(MiB);
    expect(result.outputTruncated).toBe(true);
    expect(Buffer.byteLength(result.output)).toBeLessThan(64 * KiB + 100);
    const job = await queue.getJob(jobId);
    // The return value has the output; the run state only says how the attempt ended.
    expect(readRunState(job?.progress)?.result).toEqual({ ...result, output: '' });
    const jobHash = await memoryUsage(redis, `bull:${queueName}:${jobId}`);
    const queueEvents = await memoryUsage(redis, `bull:${queueName}:events`);
    console.log(`1 MB run: job ${jobHash} bytes, BullMQ events ${queueEvents} bytes`);
    expect(jobHash).toBeLessThan(result.outputBytes / 4);
    expect(queueEvents).toBeLessThan(result.outputBytes / 4);
  });

  it('keeps of a result line of megabytes no more than its caps, on the job and in BullMQ’s events', async () => {
    await start({}, fixture('claude-large-result.mjs'));
    const jobId = await client.enqueue({ prompt: 'large result' }, { jobId: randomUUID() });
    const result = await client.result(jobId, { timeoutMs: 60_000 });

    expect(result).toMatchObject({
      success: true,
      finalOutputTruncated: true,
      usage: null,
      structuredOutput: null,
    });
    expect(result.finalOutput).toMatch(
      /^begins r+\n\[\.\.\. \d+ bytes of output truncated \.\.\.\]\nr+ ends$/,
    );
    expect(result.permissionDenials.length + result.permissionDenialsOmitted).toBe(2000);
    expect(JSON.stringify(result.permissionDenials).length).toBeLessThanOrEqual(16 * KiB);
    // The whole line is in the history.
    const history = await collectEvents(client.events(jobId, { follow: false }));
    const line = history.find(
      (event) => event.type === 'output' && event.content.includes('"type":"result"'),
    );
    expect(line?.type === 'output' && line.content.length).toBeGreaterThan(6 * MiB);
    const jobHash = await memoryUsage(redis, `bull:${queueName}:${jobId}`);
    const queueEvents = await memoryUsage(redis, `bull:${queueName}:events`);
    console.log(`a result line of 6 MiB: job ${jobHash} bytes, BullMQ events ${queueEvents} bytes`);
    // The return value, and the run state's copy of it without its output: 650 KB at most.
    expect(jobHash).toBeLessThan(650 * 1000);
    expect(queueEvents).toBeLessThan(2 * 384 * KiB);
  });

  it('keeps a failed job’s whole result, output included, where the client reads it', async () => {
    await start();
    const jobId = await client.enqueue(
      { prompt: 'chatty 30s 100x200', timeout: 1 },
      { jobId: randomUUID() },
    );
    const result = await client.result(jobId, { timeoutMs: 60_000 });

    expect(result).toMatchObject({ success: false, failure: 'timeout' });
    expect(result.output).toContain('"type":"chatter"');
    expect(Buffer.byteLength(result.output)).toBeLessThanOrEqual(result.outputBytes);
    const job = await queue.getJob(jobId);
    expect(readRunState(job?.progress)?.result).toEqual(result);
  });

  it('keeps BullMQ’s event stream within QUEUE_EVENTS_MAX_BYTES however many large jobs ran', async () => {
    await start({ QUEUE_EVENTS_MAX_BYTES: String(MiB) });
    // Each run prints at least 80 KB (400 lines of 200 bytes every 100 ms, however slow the
    // machine), its output capped at 64 KiB: 12 of them hold at least about 1 MB.
    for (let i = 0; i < 12; i++) {
      const jobId = await client.enqueue({ prompt: 'chatty 1s 400x200' });
      expect((await client.result(jobId, { timeoutMs: 60_000 })).outputTruncated).toBe(true);
    }

    const events = `bull:${queueName}:events`;
    // 1 MiB over the largest entry a job writes (5 × 64 KiB + 64 KiB): 2 entries, whatever a
    // queue opened with BullMQ's defaults (this test's) wrote into the queue's meta.
    expect(await redis.xlen(events)).toBeLessThanOrEqual(2 + 100);
    const bytes = await memoryUsage(redis, events);
    console.log(`BullMQ events after 12 jobs: ${await redis.xlen(events)} entries, ${bytes} bytes`);
    expect(bytes).toBeGreaterThan(64 * KiB);
    expect(bytes).toBeLessThan(MiB);
  });
});
