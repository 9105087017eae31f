import { describe, expect, it } from 'vitest';
import { LiveEvents } from '../../../src/client/live-events.js';
import type { ExecuteEvent } from '../../../src/contract/index.js';

const MiB = 1024 * 1024;
const output = (seq: number, chars: number): ExecuteEvent => ({
  jobId: 'job',
  seq,
  timestamp: '2026-01-01T00:00:00.000Z',
  attempt: 1,
  type: 'output',
  stream: 'stdout',
  content: 'x'.repeat(chars),
});

describe('a watcher of live events', () => {
  it('keeps what a slow consumer has not taken yet, in seq order', () => {
    const live = new LiveEvents(() => undefined);
    live.receive(output(2, 10), 100);
    live.receive(output(1, 10), 100);
    expect(live.drain().map((event) => event.seq)).toEqual([1, 2]);
    expect(live.takeResync()).toBe(false);
  });

  it('drops its buffer for the history once what waits passes 32 MiB, however few events', () => {
    const live = new LiveEvents(() => undefined);
    // Four lines of the default MAX_LINE_BYTES fit; the fifth would hold 40 MiB for one consumer.
    for (let seq = 1; seq <= 4; seq++) live.receive(output(seq, 1), 8 * MiB);
    expect(live.takeResync()).toBe(false);
    live.receive(output(5, 1), 8 * MiB);
    expect(live.takeResync()).toBe(true);
    expect(live.drain()).toEqual([]);
    // Taken out in time, the same lines are all kept.
    for (let seq = 6; seq <= 9; seq++) {
      live.receive(output(seq, 1), 8 * MiB);
      expect(live.drain().map((event) => event.seq)).toEqual([seq]);
    }
    expect(live.takeResync()).toBe(false);
  });

  it('drops its buffer for the history past 10,000 small events', () => {
    const live = new LiveEvents(() => undefined);
    for (let seq = 1; seq <= 10_000; seq++) live.receive(output(seq, 1), 100);
    expect(live.takeResync()).toBe(false);
    live.receive(output(10_001, 1), 100);
    expect(live.takeResync()).toBe(true);
    expect(live.drain()).toEqual([]);
  });
});
