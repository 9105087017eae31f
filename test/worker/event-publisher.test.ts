import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { historyKey, type HistoryFields, type QueueAddress } from '../../src/contract/index.js';
import { sendSubscription } from '../../src/redis/subscribe.js';
import type { PendingEvent } from '../../src/worker/events/job-events.js';
import { EventPublisher, type PublisherOptions } from '../../src/worker/events/publisher.js';
import { uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** `count` stdout lines of attempt 1 as the publisher queues them, seqs from 1, `line <seq>`. */
const lineEvents = (count: number): PendingEvent[] =>
  Array.from({ length: count }, (_, index) => {
    const seq = index + 1;
    const content = `line ${seq}`;
    return {
      seq,
      json: JSON.stringify({ seq, type: 'output', content }),
      stored: ['attempt', 1, 'time', seq, 'stdout', content],
    };
  });

describe('the event publisher, on a real Redis', () => {
  let connection: Redis;
  /** Subscribes to the job's channel (see sendSubscription: it may still be connecting). */
  let watcher: Redis;
  /** Reads and writes keys, as a test's own client. */
  let plain: Redis;
  let address: QueueAddress;
  const errors: string[] = [];

  beforeEach(async () => {
    connection = new Redis(redisUrl, { enableOfflineQueue: false });
    watcher = new Redis(redisUrl);
    plain = new Redis(redisUrl);
    await new Promise((resolve) => connection.once('ready', resolve));
    address = { prefix: 'bull', queueName: uniqueQueueName() };
    errors.length = 0;
  });

  afterEach(() => {
    connection.disconnect();
    watcher.disconnect();
    plain.disconnect();
  });

  const publisher = (options: Partial<PublisherOptions> = {}): EventPublisher =>
    new EventPublisher({
      redis: connection,
      address,
      maxLen: 1000,
      ttlSeconds: 600,
      bufferBytes: 1024 * 1024,
      onPublishError: (error) => errors.push(error.message),
      ...options,
    });

  /** Every message on the job's channel; each checked against the history the moment it came. */
  async function watch(jobId: string, sharded = false) {
    const reader = new Redis(redisUrl);
    const seen: { seq: number; inHistory: boolean }[] = [];
    const pending: Promise<void>[] = [];
    const onMessage = (_channel: string, message: string): void => {
      const { seq } = JSON.parse(message) as { seq: number };
      pending.push(
        reader.xrange(historyKey(address, jobId), `${seq}-0`, `${seq}-0`).then((found) => {
          seen.push({ seq, inHistory: found.length === 1 });
        }),
      );
    };
    const channel = `${address.prefix}:${address.queueName}:events:${jobId}`;
    watcher.on(sharded ? 'smessage' : 'message', onMessage);
    await sendSubscription(watcher, sharded ? 'ssubscribe' : 'subscribe', channel);
    return {
      /** Once `count` messages came: each message's seq, and whether the history had it. */
      seen: async (count: number) => {
        await waitFor(`${count} messages`, () =>
          pending.length >= count ? true : undefined,
        ).catch((error: unknown) => {
          const got = `${pending.length} came; publish errors: ${errors.join('; ') || 'none'}`;
          throw new Error(`${String(error)} (${got})`);
        });
        await Promise.all(pending);
        reader.disconnect();
        return seen.sort((a, b) => a.seq - b.seq);
      },
    };
  }

  it('stores each event in the history under its seq before it publishes it, a line as printed', async () => {
    const live = await watch('job-1');
    const events = publisher().open('job-1', 2, 5);
    events.started(
      { pid: 1, sessionId: null, cwd: '/w', resumed: false, prompt: 'original', args: [] },
      3600,
    );
    const long = `{"type":"assistant","text":"${'é'.repeat(3000)}"}`;
    void events.line('output', 'hello');
    void events.line('output', long, {}, Buffer.from(long));
    void events.line('error', 'oops');
    await events.flush();
    expect(await live.seen(4)).toEqual([5, 6, 7, 8].map((seq) => ({ seq, inHistory: true })));
    const key = historyKey(address, 'job-1');
    const entries = await plain.xrange(key, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(['5-0', '6-0', '7-0', '8-0']);
    expect(entries[0]?.[1][0]).toBe('event');
    expect(
      entries.slice(1).map(([, fields]) => [fields[0], fields[1], fields[4], fields[5]]),
    ).toEqual([
      ['attempt', '2', 'stdout', 'hello'],
      ['attempt', '2', 'stdout', long],
      ['attempt', '2', 'stderr', 'oops'],
    ]);
    expect(await plain.ttl(key)).toBeGreaterThan(3500);
    expect(errors).toEqual([]);
  });

  it('takes an event the history holds already as written before, and publishes it again', async () => {
    const first = publisher().open('job-2', 1, 1);
    void first.line('output', 'one');
    void first.line('output', 'two');
    await first.flush();
    const live = await watch('job-2');
    // A batch written again after a failover, say: the same seqs.
    const again = publisher().open('job-2', 1, 1);
    void again.line('output', 'one');
    void again.line('output', 'two');
    void again.line('output', 'three');
    await again.flush();
    const entries = await plain.xrange(historyKey(address, 'job-2'), '-', '+');
    expect(entries.map(([id, fields]) => [id, fields[5]])).toEqual([
      ['1-0', 'one'],
      ['2-0', 'two'],
      ['3-0', 'three'],
    ]);
    expect((await live.seen(3)).map(({ seq }) => seq)).toEqual([1, 2, 3]);
    expect(errors).toEqual([]);
  });

  it('hands a small batch to the connection in one write, so a worker killed mid-batch cannot leave an event stored but never published', async () => {
    const socket = connection.stream as unknown as {
      _write: (...args: unknown[]) => unknown;
      _writev: (...args: unknown[]) => unknown;
    };
    const writes: number[] = [];
    for (const method of ['_write', '_writev'] as const) {
      const original = socket[method].bind(socket);
      socket[method] = (...args: unknown[]) => {
        writes.push(method === '_writev' ? (args[0] as unknown[]).length : 1);
        return original(...args);
      };
    }
    // Three events, each an XADD and a PUBLISH, the first an EXPIRE too.
    const events = lineEvents(3).map((event, index) =>
      index === 0 ? { ...event, expire: 600 } : event,
    );
    expect(await publisher().write('job-7', events)).toBe('ok');
    expect(writes).toEqual([7]);
    expect(await plain.xlen(historyKey(address, 'job-7'))).toBe(3);
    expect(errors).toEqual([]);
  });

  it('writes a batch of many events, as a flood of lines gives, the same way', async () => {
    // A batch this large goes to Redis as one script call; the small ones above as commands.
    const batch = lineEvents(40);
    const live = await watch('job-6');
    expect(await publisher().write('job-6', batch.slice(0, 30))).toBe('ok');
    // Written again with ten more: the thirty it holds are passed over, the rest stored.
    expect(await publisher().write('job-6', batch)).toBe('ok');
    const entries = await plain.xrange(historyKey(address, 'job-6'), '-', '+');
    expect(entries.map(([id, fields]) => [id, fields[5]])).toEqual(
      batch.map(({ seq }) => [`${seq}-0`, `line ${seq}`]),
    );
    const seen = await live.seen(70);
    expect(seen.every(({ inHistory }) => inHistory)).toBe(true);
    expect(seen.map(({ seq }) => seq)).toEqual(
      [...batch.slice(0, 30).map(({ seq }) => seq), ...batch.map(({ seq }) => seq)].sort(
        (a, b) => a - b,
      ),
    );
    expect(errors).toEqual([]);
  });

  it('stores a large batch of every kind of event as it stores the same events a few at a time', async () => {
    // The script writes lines in a short form and everything else in full: the entries must
    // be the ones the plain commands of small batches make.
    const event = (seq: number, stored: HistoryFields, expire?: number): PendingEvent => ({
      seq,
      json: JSON.stringify({ seq }),
      stored,
      ...(expire === undefined ? {} : { expire }),
    });
    const batch = [
      event(1, ['event', '{"type":"started"}'], 3600),
      ...Array.from({ length: 30 }, (_, index) =>
        event(index + 2, [
          'attempt',
          2,
          'time',
          1000 + index,
          index % 3 ? 'stdout' : 'stderr',
          `l${index}`,
        ]),
      ),
      event(32, [
        'attempt',
        2,
        'time',
        2000,
        'stdout',
        'cGFydA==',
        'data',
        '{"encoding":"base64"}',
      ]),
      event(33, ['attempt', 1, 'time', 2001, 'stdout', 'a line of an earlier attempt']),
      event(34, ['event', '{"type":"completed"}'], 7200),
    ];
    expect(await publisher().write('large', batch)).toBe('ok');
    for (let at = 0; at < batch.length; at += 10) {
      expect(await publisher().write('small', batch.slice(at, at + 10))).toBe('ok');
    }
    const large = await plain.xrange(historyKey(address, 'large'), '-', '+');
    expect(large).toHaveLength(batch.length);
    expect(large).toEqual(await plain.xrange(historyKey(address, 'small'), '-', '+'));
    expect(await plain.ttl(historyKey(address, 'large'))).toBeGreaterThan(7100);
    expect(errors).toEqual([]);
  });

  it('keeps the history near its MAXLEN, the newest events in it, in large batches and small', async () => {
    const lines = lineEvents(1000);
    const writer = publisher({ maxLen: 100 });
    for (const [jobId, size] of [
      ['large', 250],
      ['small', 10],
    ] as const) {
      for (let at = 0; at < lines.length; at += size) {
        expect(await writer.write(jobId, lines.slice(at, at + size))).toBe('ok');
      }
      const key = historyKey(address, jobId);
      // MAXLEN ~ trims whole nodes of the stream (100 entries each by default): near 100, never 1,000.
      expect(await plain.xlen(key)).toBeGreaterThanOrEqual(100);
      expect(await plain.xlen(key)).toBeLessThanOrEqual(300);
      expect((await plain.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0]).toBe('1000-0');
    }
    expect(errors).toEqual([]);
  });

  it('publishes on the sharded channel with EVENTS_PUBSUB=sharded', async () => {
    const live = await watch('job-3', true);
    const events = publisher({ pubsub: 'sharded' }).open('job-3', 1, 1);
    void events.line('output', 'sharded');
    await events.flush();
    expect(await live.seen(1)).toEqual([{ seq: 1, inHistory: true }]);
  });

  it('asks for a retry, and says why, when Redis refuses the batch or the connection is gone', async () => {
    const events = [{ seq: 1, json: '{}', stored: ['event', '{}'] }];
    await plain.set(historyKey(address, 'job-4'), 'not a stream');
    expect(await publisher().write('job-4', events)).toBe('retry');
    expect(errors.at(-1)).toMatch(/WRONGTYPE/);
    // A batch large enough to go as one script call fails alike.
    expect(await publisher().write('job-4', lineEvents(20))).toBe('retry');
    expect(errors.at(-1)).toMatch(/WRONGTYPE/);

    await plain.del(historyKey(address, 'job-4'));
    expect(await publisher().write('job-4', events)).toBe('ok');

    connection.disconnect();
    expect(await publisher().write('job-4', events)).toBe('retry');
    expect(errors.at(-1)).toMatch(/Connection is closed|Stream isn't writeable/);
  });

  it('has any number of jobs wait for the connection with one listener, and lets them all go once it is ready', async () => {
    const later = new Redis(redisUrl, { enableOfflineQueue: false, lazyConnect: true });
    const warnings: Error[] = [];
    const warned = (warning: Error): void => void warnings.push(warning);
    process.on('warning', warned);
    try {
      const waiting = publisher({ redis: later });
      let ready = 0;
      const waits = Array.from({ length: 20 }, () => waiting.whenReady().then(() => ready++));
      expect(later.listenerCount('ready')).toBe(1);
      await sleep(50);
      expect(ready).toBe(0);
      await later.connect();
      await Promise.all(waits);
      expect(ready).toBe(20);
      expect(later.listenerCount('ready')).toBe(0);
      expect(warnings.map((warning) => warning.name)).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', warned);
      later.disconnect();
    }
  });

  it('asks for a retry when fewer replicas than EVENTS_WAIT_REPLICAS have the batch', async () => {
    const events = [{ seq: 1, json: '{}', stored: ['event', '{}'] }];
    // This Redis has no replica: the batch is written, but never counts as safe.
    expect(await publisher({ waitReplicas: 1 }).write('job-5', events)).toBe('retry');
    expect(errors).toEqual(['0 of 1 replicas have it']);
    expect(await plain.xlen(historyKey(address, 'job-5'))).toBe(1);
  });
});
