import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventPublisher, type PublisherOptions } from '../../../../src/worker/events/publisher.js';

/**
 * Stands in for an ioredis connection where these tests are about its state, not about what
 * Redis does with the events (test/worker/event-publisher.test.ts writes to a real one): a
 * status a test sets, the 'ready' event, and a count of the writes (a command of a small batch,
 * a large batch), each answered OK.
 */
class FakeConnection extends EventEmitter {
  status = 'ready';
  readonly isCluster = false;
  writes = 0;
  /** The events written in small batches, one XADD each. */
  added = 0;

  defineCommand(): void {
    // The publisher's script, for large batches: claudeboxWriteEvents below stands in for it.
  }

  claudeboxWriteEvents(): Promise<number> {
    this.writes++;
    return Promise.resolve(0);
  }

  /** Small batches go as commands, one after another. */
  xadd(): Promise<string> {
    this.added++;
    return this.publish();
  }

  publish(): Promise<string> {
    this.writes++;
    return Promise.resolve('OK');
  }

  expire(): Promise<string> {
    return this.publish();
  }

  goAway(): void {
    this.status = 'reconnecting';
  }

  comeBack(): void {
    this.status = 'ready';
    this.emit('ready');
  }
}

function publisherOn(
  connection: FakeConnection,
  options: Partial<PublisherOptions> = {},
): EventPublisher {
  return new EventPublisher({
    redis: connection as unknown as Redis,
    address: { prefix: 'bull', queueName: 'jobs' },
    maxLen: 1000,
    ttlSeconds: 600,
    bufferBytes: 1024 * 1024,
    now: () => 0,
    ...options,
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('EventPublisher', () => {
  it('shares one buffer between the jobs it tracks and reports the lines it drops', async () => {
    const connection = new FakeConnection();
    connection.goAway();
    const dropped: number[] = [];
    const publisher = publisherOn(connection, {
      // Each line of 1000 characters holds about 2.5 kB: in its JSON and its history entry.
      bufferBytes: 6000,
      onDropped: (count) => dropped.push(count),
    });
    expect(publisher.isConnected()).toBe(false);
    const first = publisher.open('job-1', 1, 1);
    const second = publisher.open('job-2', 1, 1);
    void first.line('output', 'a'.repeat(1000));
    const afterFirst = publisher.bufferedBytes;
    expect(afterFirst).toBeGreaterThan(1000);
    void second.line('output', 'b'.repeat(1000));
    expect(publisher.bufferedBytes).toBeGreaterThan(afterFirst);
    // The buffer is full with the two lines: a third, of either job, is dropped.
    void second.line('output', 'c'.repeat(1000));
    expect(dropped).toEqual([1]);

    connection.comeBack();
    expect(await publisher.flushAll(5000)).toBe(true);
    expect(publisher.bufferedBytes).toBe(0);
    // The two lines it kept are written once Redis is back, and nothing more is dropped.
    expect(connection.added).toBe(2);
    expect(dropped).toEqual([1]);
  });

  it('gives up waiting for the flush when the time is up, and says so', async () => {
    vi.useFakeTimers();
    const connection = new FakeConnection();
    connection.goAway();
    const publisher = publisherOn(connection);
    void publisher.open('job-1', 1, 1).line('output', 'stuck');

    const flushed = publisher.flushAll(2000);
    await vi.advanceTimersByTimeAsync(1999);
    let done = false;
    void flushed.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await flushed).toBe(false);
    expect(connection.writes).toBe(0);
  });

  it('flushes at once when nothing is pending, and forgets closed jobs', async () => {
    const connection = new FakeConnection();
    const publisher = publisherOn(connection);
    const events = publisher.open('job-1', 1, 1);
    void events.line('output', 'x');
    await events.close();
    connection.goAway();
    // A closed job is not waited for, though Redis is away now.
    expect(await publisher.flushAll(10)).toBe(true);
  });

  it("notices Redis is back even when its 'ready' event was missed", async () => {
    vi.useFakeTimers();
    const connection = new FakeConnection();
    connection.goAway();
    const publisher = publisherOn(connection);
    let ready = false;
    void publisher.whenReady().then(() => (ready = true));
    connection.status = 'ready';
    await vi.advanceTimersByTimeAsync(499);
    expect(ready).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(ready).toBe(true);
  });
});
