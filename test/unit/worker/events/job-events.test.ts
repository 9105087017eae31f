import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ExecuteEvent, ExecuteResult } from '../../../../src/contract/index.js';
import {
  JobEvents,
  type EventSink,
  type PendingEvent,
} from '../../../../src/worker/events/job-events.js';

const MiB = 1024 * 1024;
const NOW = Date.UTC(2026, 10, 1, 12, 0, 0);

type Outcome = 'ok' | 'retry';

/**
 * A publisher kept in memory: what it was asked to write, in batches, and a connection that a
 * test takes down and brings back. Each write waits for `writeGate` when one is set, so a test
 * can hold writes back as a slow Redis would.
 */
class MemorySink implements EventSink {
  bufferedBytes = 0;
  connected = true;
  droppedCount = 0;
  readonly batches: PendingEvent[][] = [];
  readonly forgotten: JobEvents[] = [];
  /** What each write answers; by default it succeeds. */
  outcome: (batch: readonly PendingEvent[]) => Outcome = () => 'ok';
  writeGate: Promise<void> | null = null;
  historyMaxBytes = Infinity;
  /** The seqs the history was trimmed below, in order. */
  readonly trims: number[] = [];
  private readyWaiters: (() => void)[] = [];

  constructor(
    readonly bufferBytes = 64 * MiB,
    readonly ttlSeconds = 600,
  ) {}

  now(): number {
    return NOW;
  }

  isConnected(): boolean {
    return this.connected;
  }

  whenReady(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  async write(_jobId: string, batch: readonly PendingEvent[]): Promise<Outcome> {
    await this.writeGate;
    const outcome = this.outcome(batch);
    if (outcome === 'ok') this.batches.push([...batch]);
    return outcome;
  }

  account(bytes: number): void {
    this.bufferedBytes += bytes;
  }

  /** What each trim answers; by default it succeeds. */
  trimOutcome = true;

  /** Held trims wait for it, as a slow Redis's would. */
  trimGate: Promise<void> | null = null;

  async trim(_jobId: string, seq: number): Promise<boolean> {
    await this.trimGate;
    if (this.trimOutcome) this.trims.push(seq);
    return this.trimOutcome;
  }

  dropped(count: number): void {
    this.droppedCount += count;
  }

  forget(job: JobEvents): void {
    this.forgotten.push(job);
  }

  disconnect(): void {
    this.connected = false;
  }

  reconnect(): void {
    this.connected = true;
    this.readyWaiters.splice(0).forEach((wake) => wake());
  }

  /** Holds every write back until the returned function is called. */
  holdWrites(): () => void {
    let release = (): void => undefined;
    this.writeGate = new Promise((resolve) => (release = resolve));
    return () => {
      this.writeGate = null;
      release();
    };
  }

  /** Every event written, in the order written. */
  get events(): ExecuteEvent[] {
    return this.batches.flat().map((event) => JSON.parse(event.json.toString()));
  }
}

const result = (attempt = 1): Omit<ExecuteResult, 'lastSeq'> => ({
  jobId: 'job-1',
  attempt,
  success: true,
  stoppedAfterResult: false,
  failure: null,
  error: null,
  exitCode: 0,
  signal: null,
  timedOut: false,
  cancelled: false,
  startedAt: new Date(NOW).toISOString(),
  durationMs: 5,
  sessionId: null,
  resumed: false,
  finalOutput: 'done',
  finalOutputTruncated: false,
  output: '',
  outputTruncated: false,
  outputBytes: 0,
  resultSubtype: 'success',
  isError: false,
  costUsd: null,
  numTurns: 1,
  usage: null,
  permissionDenialsOmitted: 0,
  permissionDenials: [],
  apiErrorStatus: null,
  jobCostUsd: null,
  structuredOutput: null,
  retrying: false,
  retryAt: null,
  workspace: null,
});

const started = {
  pid: 42,
  sessionId: null,
  cwd: '/work',
  resumed: false,
  prompt: 'original' as const,
  args: ['-p'],
};

/** Lets every pending promise callback run (the pump's awaits on an in-memory sink). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
  await new Promise((resolve) => setImmediate(resolve));
}

/** Whether a promise has resolved by now. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true));
  await settle();
  return done;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('JobEvents: numbering and writing', () => {
  it('numbers events on from the seq it was given, stamps them, and writes them in order', async () => {
    const sink = new MemorySink();
    const events = new JobEvents(sink, 'job-1', 2, 8);
    events.started(started, 3600);
    void events.line('output', '{"type":"system"}');
    void events.line('error', 'warning: something');
    const data = events.terminal('completed', result(2));
    await events.flush();

    expect(sink.events.map((e) => [e.seq, e.type, e.attempt])).toEqual([
      [8, 'started', 2],
      [9, 'output', 2],
      [10, 'error', 2],
      [11, 'completed', 2],
    ]);
    expect(sink.events.every((e) => e.jobId === 'job-1')).toBe(true);
    expect(sink.events[0]?.timestamp).toBe('2026-11-01T12:00:00.000Z');
    expect(sink.events[1]).toMatchObject({ stream: 'stdout', content: '{"type":"system"}' });
    expect(sink.events[2]).toMatchObject({ stream: 'stderr', content: 'warning: something' });
    expect(data.lastSeq).toBe(11);
    expect(events.lastSeq).toBe(11);
    expect(sink.bufferedBytes).toBe(0);
  });

  it('sets the history to expire with the started event and again with the terminal one', async () => {
    const sink = new MemorySink(64 * MiB, 600);
    const events = new JobEvents(sink, 'job-1', 1, 1);
    events.started(started, 3600);
    void events.line('output', 'x');
    events.terminal('failed', { ...result(), success: false });
    await events.flush();
    expect(sink.batches.flat().map((e) => e.expire)).toEqual([3600, undefined, 600]);
  });

  it('carries partial and base64 markers on a line, and no data when there are none', async () => {
    const sink = new MemorySink();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'AAEC', { encoding: 'base64' });
    void events.line('output', 'piece', { partial: true });
    void events.line('output', 'plain', { partial: undefined });
    await events.flush();
    expect(sink.events.map((e) => ('data' in e ? e.data : null))).toEqual([
      { encoding: 'base64' },
      { partial: true },
      null,
    ]);
  });

  it('ignores lines and a started event after the attempt ended', async () => {
    const sink = new MemorySink();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    events.terminal('completed', result());
    expect(events.ended).toBe(true);
    expect(events.line('output', 'late')).toBeUndefined();
    events.started(started, 60);
    await events.flush();
    expect(sink.events.map((e) => e.type)).toEqual(['completed']);
  });

  it("writes an earlier attempt's terminal event without ending this attempt", async () => {
    const sink = new MemorySink();
    const events = new JobEvents(sink, 'job-1', 3, 20);
    const abandoned = events.terminal('failed', { ...result(2), success: false }, 2);
    void events.line('output', 'attempt 3 goes on');
    await events.flush();
    expect(events.ended).toBe(false);
    expect(abandoned.lastSeq).toBe(20);
    expect(sink.events.map((e) => [e.seq, e.type, e.attempt])).toEqual([
      [20, 'failed', 2],
      [21, 'output', 3],
    ]);
  });

  it('writes at most 256 events in one batch', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    for (let i = 0; i < 600; i++) void events.line('output', `line ${i}`);
    release();
    await events.flush();
    expect(sink.batches.map((batch) => batch.length)).toEqual([1, 256, 256, 87]);
    expect(sink.events.map((e) => e.seq)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
  });

  it('keeps a batch within 256 KiB unless one event alone is larger', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'first');
    for (let i = 0; i < 6; i++) void events.line('output', 'x'.repeat(100 * 1024));
    void events.line('output', 'y'.repeat(400 * 1024));
    release();
    await events.flush();
    const sizes = sink.batches.map((batch) => batch.reduce((sum, e) => sum + e.json.length, 0));
    expect(sink.batches.map((batch) => batch.length)).toEqual([1, 2, 2, 2, 1]);
    expect(sizes.slice(0, 4).every((size) => size <= 256 * 1024)).toBe(true);
    expect(sizes[4]).toBeGreaterThan(400 * 1024);
  });

  it('trims the oldest entries once what the attempt wrote passes historyMaxBytes', async () => {
    const sink = new MemorySink();
    sink.historyMaxBytes = 300 * 1024;
    const events = new JobEvents(sink, 'job-1', 2, 5);
    const stored = (seq: number): number =>
      (sink.batches.flat().find((e) => e.seq === seq)?.stored ?? []).reduce<number>(
        (sum, field) => sum + (typeof field === 'number' ? 8 : field.length),
        0,
      );
    for (let i = 0; i < 10; i++) {
      void events.line('output', 'x'.repeat(100 * 1024));
      await events.flush();
      // What stays (everything from the last trim on) is never over the cap.
      const from = sink.trims.at(-1) ?? 0;
      const kept = sink.batches.flat().filter((e) => e.seq >= from);
      expect(kept.reduce((sum, e) => sum + stored(e.seq), 0)).toBeLessThanOrEqual(300 * 1024);
    }
    events.terminal('completed', result(2));
    await events.flush();
    // The first trim takes the earlier attempt's entries (below seq 5) and the oldest of these.
    expect(sink.trims.length).toBeGreaterThanOrEqual(3);
    expect(sink.trims).toEqual([...sink.trims].sort((a, b) => a - b));
    expect(sink.trims[0]).toBeGreaterThan(5);
    expect(sink.trims.at(-1)).toBeLessThan(events.lastSeq);
  });

  it('keeps a bounded record of a long run written an event at a time, and still trims to the cap', async () => {
    const sink = new MemorySink();
    sink.historyMaxBytes = 1024 * 1024;
    const events = new JobEvents(sink, 'job-1', 1, 1);
    // Each event a batch of its own, as at a human pace: 20,000 records without merging.
    for (let i = 0; i < 20_000; i++) {
      void events.line('output', 'x'.repeat(100));
      await events.flush();
    }
    const kept = (events as unknown as { kept: unknown[] }).kept;
    expect(kept.length).toBeLessThanOrEqual(1024);
    // Whatever stays after the last trim is within the cap.
    const from = sink.trims.at(-1) ?? 0;
    const stored = sink.batches
      .flat()
      .filter((e) => e.seq >= from)
      .reduce(
        (sum, e) =>
          sum + e.stored.reduce<number>((n, f) => n + (typeof f === 'number' ? 8 : f.length), 0),
        0,
      );
    expect(sink.trims.length).toBeGreaterThan(0);
    expect(stored).toBeLessThanOrEqual(1024 * 1024);
  });

  it('tries a trim Redis refused again after the next batch', async () => {
    const sink = new MemorySink();
    sink.historyMaxBytes = 300 * 1024;
    sink.trimOutcome = false;
    const events = new JobEvents(sink, 'job-1', 1, 1);
    for (let i = 0; i < 3; i++) {
      void events.line('output', 'x'.repeat(100 * 1024));
      await events.flush();
    }
    expect(sink.trims).toEqual([]);
    // Redis still holds all three lines, over the cap: a short line is enough to try again.
    sink.trimOutcome = true;
    void events.line('output', 'short');
    await events.flush();
    expect(sink.trims).toEqual([2]);
  });

  it('counts a written batch once when the job is discarded while its trim waits', async () => {
    const sink = new MemorySink();
    sink.historyMaxBytes = 150 * 1024;
    let releaseTrim = (): void => undefined;
    sink.trimGate = new Promise((resolve) => (releaseTrim = resolve));
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'x'.repeat(100 * 1024));
    await events.flush();
    void events.line('output', 'y'.repeat(100 * 1024));
    await settle();
    // The second batch is written and its trim waits: the job goes to another worker now.
    events.discard();
    releaseTrim();
    await settle();
    expect(sink.bufferedBytes).toBe(0);
  });

  it('trims nothing under historyMaxBytes', async () => {
    const sink = new MemorySink();
    sink.historyMaxBytes = 300 * 1024;
    const events = new JobEvents(sink, 'job-1', 1, 1);
    for (let i = 0; i < 2; i++) void events.line('output', 'x'.repeat(100 * 1024));
    events.terminal('completed', result());
    await events.flush();
    expect(sink.trims).toEqual([]);
  });

  it('close() writes everything, then stops being tracked by the publisher', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'a');
    void events.line('output', 'b');
    const closing = events.close();
    expect(await isSettled(closing)).toBe(false);
    release();
    await closing;
    expect(sink.events.map((e) => e.seq)).toEqual([1, 2]);
    expect(sink.forgotten).toEqual([events]);
  });
});

describe('JobEvents: backpressure while Redis is reachable', () => {
  it('makes a run wait once its own backlog passes 1 MiB, and lets it go below 256 KiB', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    const line = 'x'.repeat(100 * 1024);

    let waitedAt = -1;
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 20 && !wait; i++) {
      wait = events.line('output', line);
      if (wait) waitedAt = i;
    }
    // The first line is already in flight; about ten more fill the 1 MiB backlog.
    expect(waitedAt).toBeGreaterThanOrEqual(9);
    expect(waitedAt).toBeLessThanOrEqual(11);
    if (!wait) throw new Error('the run was never asked to wait');
    expect(await isSettled(wait)).toBe(false);

    release();
    await wait;
    await events.flush();
    expect(sink.events).toHaveLength(waitedAt + 1);
    expect(sink.droppedCount).toBe(0);
  });

  it('does not hold a run up for a backlog other jobs left in the shared buffer', () => {
    const sink = new MemorySink();
    sink.bufferedBytes = 60 * MiB;
    const events = new JobEvents(sink, 'job-1', 1, 1);
    expect(events.line('output', 'x'.repeat(1000))).toBeUndefined();
  });

  it('releases a waiting run when Redis goes away, instead of holding it for the outage', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 20 && !wait; i++) wait = events.line('output', 'x'.repeat(100 * 1024));
    if (!wait) throw new Error('the run was never asked to wait');

    sink.disconnect();
    release();
    await wait;
    // Nothing was lost: the backlog is written once Redis is back.
    sink.reconnect();
    await events.flush();
    expect(sink.droppedCount).toBe(0);
  });
});

describe('JobEvents: while Redis is unreachable', () => {
  it('counts against the buffer what a line holds in memory: its JSON and its history entry', () => {
    const sink = new MemorySink(64 * MiB);
    sink.disconnect();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'x'.repeat(100_000));
    expect(sink.bufferedBytes).toBeGreaterThan(200_000);
    expect(sink.bufferedBytes).toBeLessThan(201_000);
  });

  it('buffers lines without waiting, drops those past the buffer, and names them in one gap event', async () => {
    const sink = new MemorySink(4096);
    sink.disconnect();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    const waits = Array.from({ length: 10 }, (_, i) => events.line('output', `${i}`.repeat(1000)));
    expect(waits.every((wait) => wait === undefined)).toBe(true);
    const kept = 10 - sink.droppedCount;
    expect(kept).toBeGreaterThan(0);
    expect(sink.droppedCount).toBeGreaterThan(0);
    expect(sink.bufferedBytes).toBeLessThanOrEqual(4096);
    expect(sink.batches).toHaveLength(0);

    sink.reconnect();
    void events.line('output', 'back');
    await events.flush();

    expect(sink.events.map((e) => e.type)).toEqual([
      ...Array<string>(kept).fill('output'),
      'gap',
      'output',
    ]);
    const gap = sink.events[kept];
    expect(gap).toMatchObject({
      seq: 11,
      type: 'gap',
      data: { ranges: [{ from: kept + 1, to: 10 }], count: 10 - kept, reason: 'buffer-overflow' },
    });
    expect(sink.events.at(-1)).toMatchObject({ seq: 12, content: 'back' });
    // Every seq is accounted for: written, or named by the gap.
    expect(sink.events.map((e) => e.seq)).toEqual([
      ...Array.from({ length: kept }, (_, i) => i + 1),
      11,
      12,
    ]);
  });

  it('names dropped lines in a gap just before the terminal event, whose lastSeq covers both', async () => {
    const sink = new MemorySink(1024);
    sink.disconnect();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    for (let i = 0; i < 5; i++) void events.line('output', 'z'.repeat(600));
    const data = events.terminal('completed', result());
    sink.reconnect();
    await events.flush();

    const kept = 5 - sink.droppedCount;
    expect(sink.events.map((e) => [e.seq, e.type])).toEqual([
      ...Array.from({ length: kept }, (_, i) => [i + 1, 'output']),
      [6, 'gap'],
      [7, 'completed'],
    ]);
    expect(sink.events[kept]).toMatchObject({
      data: { ranges: [{ from: kept + 1, to: 5 }], count: 5 - kept },
    });
    expect(data.lastSeq).toBe(7);
  });

  it('keeps the started and terminal events even when the buffer is full', async () => {
    const sink = new MemorySink(1024);
    sink.bufferedBytes = 2048;
    sink.disconnect();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    events.started(started, 60);
    void events.line('output', 'dropped');
    events.terminal('completed', result());
    sink.reconnect();
    await events.flush();
    expect(sink.events.map((e) => e.type)).toEqual(['started', 'gap', 'completed']);
  });

  it('does not count a write refused because the connection dropped as a failure', async () => {
    vi.useFakeTimers();
    const sink = new MemorySink();
    let refusals = 0;
    sink.outcome = () => {
      if (refusals >= 8) return 'ok';
      refusals++;
      sink.disconnect();
      setTimeout(() => sink.reconnect(), 100);
      return 'retry';
    };
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'survives every outage');
    const flushed = events.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    await flushed;
    expect(refusals).toBe(8);
    expect(sink.droppedCount).toBe(0);
    expect(sink.events.map((e) => e.type)).toEqual(['output']);
  });
});

describe('JobEvents: Redis reachable but refusing the events', () => {
  it('gives a batch up after five refusals and reports it as a publish-failed gap', async () => {
    vi.useFakeTimers();
    const sink = new MemorySink();
    let calls = 0;
    sink.outcome = (batch) =>
      batch.some((e) => e.json.toString().includes('poison')) ? (calls++, 'retry') : 'ok';
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'poison');
    const flushed = events.flush();
    await vi.advanceTimersByTimeAsync(5_000);
    await flushed;
    expect(calls).toBe(5);
    expect(sink.droppedCount).toBe(1);
    expect(sink.bufferedBytes).toBe(0);

    void events.line('output', 'after');
    await events.flush();
    expect(sink.events).toMatchObject([
      { seq: 2, type: 'gap', data: { ranges: [{ from: 1, to: 1 }], count: 1 } },
      { seq: 3, type: 'output', content: 'after' },
    ]);
    expect(sink.events[0]).toMatchObject({ data: { reason: 'publish-failed' } });
  });

  it('counts a batch it gave up against historyMaxBytes: the history may hold it all the same', async () => {
    vi.useFakeTimers();
    const sink = new MemorySink();
    sink.historyMaxBytes = 300 * 1024;
    // Written each time, as a batch that reached the primary but too few replicas is.
    sink.outcome = (batch) => (batch.some((e) => e.json.includes('unconfirmed')) ? 'retry' : 'ok');
    const events = new JobEvents(sink, 'job-1', 1, 1);
    for (let i = 0; i < 3; i++) {
      void events.line('output', `unconfirmed ${'x'.repeat(100 * 1024)}`);
      const flushed = events.flush();
      await vi.advanceTimersByTimeAsync(5_000);
      await flushed;
    }
    // Three lines of over 100 KiB each: the oldest goes.
    expect(sink.droppedCount).toBe(3);
    expect(sink.trims).toEqual([2]);
  });

  it('merges the seqs of refused batches into ranges', async () => {
    vi.useFakeTimers();
    const sink = new MemorySink();
    const release = sink.holdWrites();
    sink.outcome = (batch) =>
      batch.some((e) => e.json.toString().includes('poison')) ? 'retry' : 'ok';
    const events = new JobEvents(sink, 'job-1', 1, 1);
    // The first batch (seq 1) goes alone; seqs 2..4 share the second, refused, batch.
    void events.line('output', 'poison');
    void events.line('output', 'poison');
    void events.line('output', 'poison');
    void events.line('output', 'poison');
    release();
    const flushed = events.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    await flushed;
    void events.line('output', 'after');
    await events.flush();
    expect(sink.events[0]).toMatchObject({
      type: 'gap',
      data: { ranges: [{ from: 1, to: 4 }], count: 4, reason: 'publish-failed' },
    });
  });
  it('merges seqs given up out of order into one range with those dropped meanwhile', async () => {
    vi.useFakeTimers();
    const sink = new MemorySink(1024);
    sink.outcome = (batch) =>
      batch.some((e) => e.json.toString().includes('poison')) ? 'retry' : 'ok';
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'poison');
    // While seq 1 is being retried, Redis blinks and two long lines find the buffer full.
    await vi.advanceTimersByTimeAsync(100);
    sink.disconnect();
    void events.line('output', 'a'.repeat(2000));
    void events.line('output', 'b'.repeat(2000));
    sink.reconnect();
    await vi.advanceTimersByTimeAsync(10_000);
    await events.flush();

    void events.line('output', 'after');
    await events.flush();
    expect(sink.events).toMatchObject([
      { seq: 4, type: 'gap', data: { ranges: [{ from: 1, to: 3 }], count: 3 } },
      { seq: 5, type: 'output', content: 'after' },
    ]);
  });
});

describe('JobEvents: discard', () => {
  it('gives up what was not yet written, returns its bytes to the buffer and wakes a waiting run', async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 20 && !wait; i++) wait = events.line('output', 'x'.repeat(100 * 1024));
    if (!wait) throw new Error('the run was never asked to wait');
    const inFlight = sink.bufferedBytes;

    events.discard();
    await wait;
    expect(sink.forgotten).toEqual([events]);
    // Only the batch already on its way is still held.
    expect(sink.bufferedBytes).toBeLessThan(inFlight);
    expect(sink.bufferedBytes).toBeGreaterThan(100 * 1024);

    release();
    await events.flush();
    expect(sink.events.map((e) => e.seq)).toEqual([1]);
    expect(sink.bufferedBytes).toBe(0);
  });

  it('writes nothing it held during an outage once Redis is back', async () => {
    const sink = new MemorySink();
    sink.disconnect();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'held');
    events.terminal('failed', { ...result(), success: false });
    events.discard();
    expect(sink.bufferedBytes).toBe(0);
    sink.reconnect();
    await events.flush();
    expect(sink.events).toEqual([]);
  });

  it("does not write again a batch that was on its way and failed: its seqs are the new owner's", async () => {
    const sink = new MemorySink();
    const release = sink.holdWrites();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'on its way');
    // The write under way fails as Redis goes away; the job is another worker's meanwhile.
    let writes = 0;
    sink.outcome = () => (++writes === 1 ? 'retry' : 'ok');
    events.discard();
    sink.disconnect();
    release();
    await vi.waitFor(() => expect(writes).toBe(1));
    sink.reconnect();
    await events.flush();
    expect(sink.events).toEqual([]);
    expect(sink.bufferedBytes).toBe(0);
  });

  it("takes no event after it: their seqs are the new owner's now", async () => {
    const sink = new MemorySink();
    const events = new JobEvents(sink, 'job-1', 1, 1);
    void events.line('output', 'before');
    await events.flush();
    events.discard();

    // A session sync that has not stopped yet still has something to say.
    void events.line('error', 'claudebox: a late note');
    await events.flush();
    expect(sink.events.map((e) => e.seq)).toEqual([1]);
    expect(sink.bufferedBytes).toBe(0);
  });
});
