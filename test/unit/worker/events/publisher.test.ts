import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventPublisher, type PublisherOptions } from '../../../../src/worker/events/publisher.js';

type Command = [string, ...unknown[]];

/**
 * Stands in for an ioredis connection: a status a test sets, the 'ready' event, and a pipeline
 * that records its commands and answers with what the test scripted. No Redis is involved.
 */
class FakeConnection extends EventEmitter {
  status = 'ready';
  readonly pipelines: Command[][] = [];
  answer: (commands: Command[]) => Promise<[Error | null, unknown][] | null> = (commands) =>
    Promise.resolve(commands.map(() => [null, 'OK']));

  pipeline() {
    const commands: Command[] = [];
    this.pipelines.push(commands);
    const pipeline = {
      xadd: (...args: unknown[]) => (commands.push(['xadd', ...args]), pipeline),
      publish: (...args: unknown[]) => (commands.push(['publish', ...args]), pipeline),
      expire: (...args: unknown[]) => (commands.push(['expire', ...args]), pipeline),
      exec: () => this.answer(commands),
    };
    return pipeline;
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
  it('writes each event to the stream under its seq, then publishes it, a line stored raw', async () => {
    const connection = new FakeConnection();
    const publisher = publisherOn(connection);
    const events = publisher.open('job-7', 1, 1);
    events.started(
      { pid: 1, sessionId: null, cwd: '/w', resumed: false, prompt: 'original', args: [] },
      3600,
    );
    void events.line('output', 'hello');
    await events.flush();

    const commands = connection.pipelines.flat();
    expect(commands.map(([name, key, ...rest]) => [name, key, ...rest.slice(0, 4)])).toEqual([
      ['xadd', 'bull:jobs:history:job-7', 'MAXLEN', '~', 1000, '1-0'],
      ['publish', 'jobs:events:job-7', expect.any(String)],
      ['expire', 'bull:jobs:history:job-7', 3600],
      ['xadd', 'bull:jobs:history:job-7', 'MAXLEN', '~', 1000, '2-0'],
      ['publish', 'jobs:events:job-7', expect.any(String)],
    ]);
    const [xadd, publish, , lineXadd, linePublish] = commands;
    expect(xadd?.slice(6)).toEqual(['event', publish?.at(-1)]);
    expect(JSON.parse(String(publish?.at(-1)))).toMatchObject({ seq: 1, type: 'started' });
    expect(lineXadd?.slice(6)).toEqual(['attempt', 1, 'time', 0, 'stdout', 'hello']);
    expect(JSON.parse(String(linePublish?.at(-1)))).toMatchObject({ seq: 2, content: 'hello' });
  });

  it('takes a refused duplicate entry as written: the event was stored before', async () => {
    const connection = new FakeConnection();
    const errors: Error[] = [];
    const publisher = publisherOn(connection, { onPublishError: (e) => errors.push(e) });
    connection.answer = (commands) =>
      Promise.resolve(
        commands.map(([name]) =>
          name === 'xadd'
            ? [
                new Error(
                  'ERR The ID specified in XADD is equal or smaller than the target stream top item',
                ),
                null,
              ]
            : [null, 1],
        ),
      );
    expect(await publisher.write('job-1', [{ seq: 3, json: '{}', stored: ['event', '{}'] }])).toBe(
      'ok',
    );
    expect(errors).toEqual([]);
  });

  it('asks for a retry, and reports why, when a command or the pipeline fails', async () => {
    const connection = new FakeConnection();
    const errors: string[] = [];
    const publisher = publisherOn(connection, { onPublishError: (e) => errors.push(e.message) });
    const batch = [{ seq: 1, json: '{}', stored: ['event', '{}'] }];

    connection.answer = () =>
      Promise.resolve([
        [null, '1-0'],
        [new Error('OOM command not allowed'), null],
      ]);
    expect(await publisher.write('job-1', batch)).toBe('retry');

    connection.answer = () => Promise.reject(new Error('Connection is closed.'));
    expect(await publisher.write('job-1', batch)).toBe('retry');

    connection.answer = () => Promise.resolve(null);
    expect(await publisher.write('job-1', batch)).toBe('retry');

    expect(errors).toEqual(['OOM command not allowed', 'Connection is closed.']);
  });

  it('shares one buffer between the jobs it tracks and reports the lines it drops', async () => {
    const connection = new FakeConnection();
    connection.goAway();
    const dropped: number[] = [];
    const publisher = publisherOn(connection, {
      bufferBytes: 3000,
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
    expect(connection.pipelines).toHaveLength(0);
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
