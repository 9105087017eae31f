import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { historyKey, type ExecuteEvent } from '../../src/contract/index.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  subscribeToEvents,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** The history stream as stored (contract version 2): a line raw beside a small envelope. */
describe('the history as stored', () => {
  let client: ClaudeboxClient | undefined;
  let worker: TestWorker | undefined;
  let redis: Redis | undefined;

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    await client?.close();
    await redis?.quit();
  });

  /** Runs one job on a worker of its own; its events as published live, and its queue. */
  async function runJob(
    claudeBin: string,
    prompt: string,
    env: Record<string, string> = {},
  ): Promise<{ live: ExecuteEvent[]; jobId: string; queueName: string }> {
    const queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture(claudeBin), env });
    const jobId = randomUUID();
    const live = await subscribeToEvents(redisUrl, queueName, jobId);
    await client.enqueue({ prompt }, { jobId });
    await waitFor('the terminal event', () =>
      live.events.some((e) => e.type === 'completed' || e.type === 'failed') ? true : undefined,
    );
    await live.close();
    return { live: live.events, jobId, queueName };
  }

  it.each([
    ['stderr lines', 'claude-stderr.mjs', {}],
    ['a line that is not UTF-8', 'claude-garbage.mjs', {}],
    ['a line split at MAX_LINE_BYTES', 'claude-long-line.mjs', { MAX_LINE_BYTES: '65536' }],
  ])('replays %s exactly as they were published live', async (_what, bin, env) => {
    const { live, jobId } = await runJob(bin, 'go', env);
    const replayed = await collectEvents(
      (client as ClaudeboxClient).events(jobId, { follow: false }),
    );
    expect(live.some((e) => e.type === 'error' || e.data !== undefined)).toBe(true);
    expect(replayed).toEqual(live);
  });

  it("keeps a run's lines as printed: the stream costs about what the run printed", async () => {
    const { live, jobId, queueName } = await runJob('claude-chatty.mjs', 'chatty 1s 500x200');
    redis = new Redis(redisUrl);
    const key = historyKey({ prefix: 'bull', queueName }, jobId);
    const lines = live.filter((e) => e.type === 'output');
    const printed = lines.reduce((sum, e) => sum + Buffer.byteLength(e.content) + 1, 0);
    expect(printed).toBeGreaterThan(1024 * 1024);

    const entries = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    const size = ([, fields]: [string, string[]]): number =>
      fields.reduce((sum, value) => sum + Buffer.byteLength(value), 0);
    const lineEntries = entries.filter(([, fields]) => fields.includes('stdout'));
    expect(lineEntries).toHaveLength(lines.length);
    // Each line as printed, plus a few bytes of envelope (attempt, time): no JSON around it.
    const stored = lineEntries.reduce((sum, entry) => sum + size(entry), 0);
    expect(stored).toBeLessThan(printed * 1.15);
    // Redis' own count, nodes and all, leaving out the terminal event (the result, with its output).
    const terminal = entries.at(-1) as [string, string[]];
    const usage = Number(await redis.memory('USAGE', key, 'SAMPLES', 0));
    expect(usage - size(terminal)).toBeLessThan(printed * 1.6);
  });
});
