import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import {
  eventChannel,
  historyFields,
  historyKey,
  type ExecuteEvent,
} from '../../src/contract/index.js';
import { readNewest } from '../../src/redis/history.js';
import { uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/**
 * Events written the way a worker writes them (history first, then the channel), by hand,
 * to reach the cases a real run only reaches by bad luck.
 */
describe('event replay at the edges', () => {
  let redis: Redis;
  let client: ClaudeboxClient;
  let address: { prefix: string; queueName: string };
  let jobId: string;

  beforeEach(() => {
    redis = new Redis(redisUrl);
    address = { prefix: 'bull', queueName: uniqueQueueName() };
    client = createClient({ url: redisUrl, queueName: address.queueName });
    jobId = randomUUID();
  });
  afterEach(async () => {
    await client.close();
    await redis.quit();
  });

  const event = (seq: number, type: 'output' | 'completed' = 'output'): ExecuteEvent =>
    type === 'output'
      ? {
          jobId,
          attempt: 1,
          seq,
          type,
          timestamp: new Date().toISOString(),
          stream: 'stdout',
          content: `line ${seq}`,
        }
      : ({
          jobId,
          attempt: 1,
          seq,
          type,
          timestamp: new Date().toISOString(),
          data: { retrying: false, lastSeq: seq },
        } as ExecuteEvent);

  async function write(events: ExecuteEvent[], publish: boolean): Promise<void> {
    const pipeline = redis.pipeline();
    for (const e of events) {
      const json = JSON.stringify(e);
      const fields = historyFields(e, json, Date.parse(e.timestamp));
      pipeline.xadd(historyKey(address, jobId), `${e.seq}-0`, ...fields);
      if (publish) pipeline.publish(eventChannel(address, jobId), json);
    }
    await pipeline.exec();
  }

  const range = (from: number, to: number): number[] =>
    Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it('gets past a hole the history cannot fill, however much history follows it', async () => {
    // Seqs 3..999 were lost (a gap event would name them); 1000..1701 are in the history.
    await write(
      range(1, 2).map((seq) => event(seq)),
      false,
    );
    const seen: number[] = [];
    const done = (async () => {
      for await (const e of client.events(jobId)) seen.push(e.seq);
    })();
    await waitFor('the first events', () => (seen.length >= 2 ? true : undefined));
    // Live, event 1000 arrives only once the history already holds hundreds after it.
    await write(
      range(1001, 1700).map((seq) => event(seq)),
      false,
    );
    await write([event(1000)], true);
    await write([event(1701, 'completed')], true);
    await done;

    expect(seen).toEqual([1, 2, ...range(1000, 1701)]);
  });

  it('replays past entries another client wrote that hold no event, to the end, however many pages', async () => {
    // Two entries no reader could go by, in two pages of the replay.
    const unreadable = (seq: number) =>
      redis.xadd(historyKey(address, jobId), `${seq}-0`, 'event', '{"seq":"x"}');
    await write(
      range(1, 99).map((seq) => event(seq)),
      false,
    );
    await unreadable(100);
    await write(
      range(101, 699).map((seq) => event(seq)),
      false,
    );
    await unreadable(700);
    await write([...range(701, 1200).map((seq) => event(seq)), event(1201, 'completed')], false);
    const seen: number[] = [];
    for await (const e of client.events(jobId, { follow: false })) seen.push(e.seq);
    expect(seen).toEqual(range(1, 1201).filter((seq) => seq !== 100 && seq !== 700));
  });

  it("gives a job's next attempt the seq after the newest entry, whatever that entry holds", async () => {
    await write(
      range(1, 4).map((seq) => event(seq)),
      false,
    );
    await redis.xadd(historyKey(address, jobId), '5-0', 'event', '{"seq":"x"}');
    // A seq the history holds is never written again: the next attempt's events would be lost.
    expect(await readNewest(redis, address, jobId)).toEqual({ seq: 5, event: null });
  });

  it('falls back on the history when a slow consumer lets the live buffer overflow', async () => {
    await write([event(1)], true);
    const seen: number[] = [];
    for await (const e of client.events(jobId)) {
      seen.push(e.seq);
      // While the consumer dawdles over its first event, 15,000 more arrive live.
      if (e.seq === 1)
        await write(
          [...range(2, 15_000).map((seq) => event(seq)), event(15_001, 'completed')],
          true,
        );
    }
    expect(seen).toEqual(range(1, 15_001));
  });

  it('names what the worker trimmed from the history while a replay was paging through it', async () => {
    await write([...range(1, 1199).map((seq) => event(seq)), event(1200, 'completed')], false);
    const seen: string[] = [];
    for await (const e of client.events(jobId, { follow: false })) {
      seen.push(e.type === 'gap' ? `gap:${e.seq}-${e.data.ranges[0]?.to}` : String(e.seq));
      // While the reader is in its first page, the worker trims the history below 800.
      if (e.seq === 10) await redis.xtrim(historyKey(address, jobId), 'MINID', '800-0');
    }
    expect(seen).toEqual([
      ...range(1, 500).map(String),
      'gap:501-799',
      ...range(800, 1200).map(String),
    ]);
  });

  it('leaves a hole within a page to the worker’s own gap event, however the history is trimmed meanwhile', async () => {
    // Seqs 11..20 were lost in an outage: the worker's gap event (seq 21) names them.
    const lost = {
      jobId,
      attempt: 1,
      seq: 21,
      type: 'gap',
      timestamp: new Date().toISOString(),
      data: { ranges: [{ from: 11, to: 20 }], count: 10, reason: 'buffer-overflow' },
    } as ExecuteEvent;
    await write(
      [...range(1, 10).map((seq) => event(seq)), lost, ...range(22, 30).map((seq) => event(seq))],
      false,
    );
    await write([event(31, 'completed')], false);
    const seen: string[] = [];
    for await (const e of client.events(jobId, { follow: false })) {
      seen.push(e.type === 'gap' ? `gap:${e.data.reason}` : String(e.seq));
      if (e.seq === 10) await redis.xtrim(historyKey(address, jobId), 'MINID', '25-0');
    }
    expect(seen).toEqual([
      ...range(1, 10).map(String),
      'gap:buffer-overflow',
      ...range(22, 31).map(String),
    ]);
  });

  it('passes over messages on the live channel that are no events', async () => {
    await write([event(1)], true);
    const seen: ExecuteEvent[] = [];
    for await (const e of client.events(jobId)) {
      seen.push(e);
      if (e.seq !== 1) continue;
      // Someone else publishes on the job's channel, then the job goes on.
      const channel = eventChannel(address, jobId);
      const otherJob = { ...event(2), jobId: 'another-job' };
      const junk = ['not json', '{"seq":"x"}', '{"seq":2}', JSON.stringify(event(0))];
      for (const message of [...junk, JSON.stringify(otherJob)]) {
        await redis.publish(channel, message);
      }
      await write([event(2), event(3, 'completed')], true);
    }
    expect(seen.map((e) => `${e.jobId}:${e.type}:${e.seq}`)).toEqual([
      `${jobId}:output:1`,
      `${jobId}:output:2`,
      `${jobId}:completed:3`,
    ]);
  });

  it("gives the gap it makes for trimmed events the attempt of the history's oldest event", async () => {
    const ofAttempt3 = (e: ExecuteEvent): ExecuteEvent => ({ ...e, attempt: 3 });
    await write([event(50), event(51, 'completed')].map(ofAttempt3), false);
    const events: ExecuteEvent[] = [];
    for await (const e of client.events(jobId)) events.push(e);
    expect(events.map((e) => `${e.type}:${e.seq}:${e.attempt}`)).toEqual([
      'gap:1:3',
      'output:50:3',
      'completed:51:3',
    ]);
  });

  it('says so with a gap event when the history was trimmed past the asked seq', async () => {
    await write([...range(50, 52).map((seq) => event(seq)), event(53, 'completed')], false);
    const events: ExecuteEvent[] = [];
    for await (const e of client.events(jobId, { fromSeq: 10 })) events.push(e);
    expect(events.map((e) => `${e.type}:${e.seq}`)).toEqual([
      'gap:10',
      'output:50',
      'output:51',
      'output:52',
      'completed:53',
    ]);
    expect(events[0]).toMatchObject({
      data: { ranges: [{ from: 10, to: 49 }], count: 40, reason: 'trimmed' },
    });
  });
});
