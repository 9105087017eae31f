import { describe, expect, it, vi } from 'vitest';
import { sampledAtMostEvery } from '../../../../src/worker/runtime/metrics.js';

describe('sampledAtMostEvery', () => {
  it('takes a sample at most once per period, however many callers ask', async () => {
    let clock = 0;
    let taken = 0;
    const read = sampledAtMostEvery(
      () => Promise.resolve(`sample ${++taken}`),
      2000,
      1000,
      () => clock,
    );
    const answers = await Promise.all(Array.from({ length: 100 }, () => read()));
    expect(new Set(answers)).toEqual(new Set(['sample 1']));
    clock = 1999;
    expect(await read()).toBe('sample 1');
    clock = 2000;
    expect(await read()).toBe('sample 2');
    expect(taken).toBe(2);
  });

  it('answers with the last sample while a new one hangs, and does not start another', async () => {
    let clock = 0;
    let taken = 0;
    const read = sampledAtMostEvery(
      () => (++taken === 1 ? Promise.resolve('first') : new Promise<string>(() => undefined)),
      2000,
      10,
      () => clock,
    );
    expect(await read()).toBe('first');
    clock = 5000;
    expect(await Promise.all([read(), read(), read()])).toEqual(['first', 'first', 'first']);
    expect(taken).toBe(2);
  });

  it('keeps the last sample when one fails', async () => {
    let clock = 0;
    let fail = false;
    const read = sampledAtMostEvery(
      () => (fail ? Promise.reject(new Error('Redis away')) : Promise.resolve('counts')),
      2000,
      1000,
      () => clock,
    );
    expect(await read()).toBe('counts');
    fail = true;
    clock = 2000;
    expect(await read()).toBe('counts');
  });

  it('waits longer for its first sample once: with Redis away from the start, later callers wait as others do', async () => {
    vi.useFakeTimers();
    try {
      const read = sampledAtMostEvery(() => new Promise<string>(() => undefined), 2000, 1000);
      const answered: string[] = [];
      void read().then((answer) => answered.push(`first: ${answer}`));
      await vi.advanceTimersByTimeAsync(1000);
      expect(answered).toEqual([]);
      await vi.advanceTimersByTimeAsync(4000);
      expect(answered).toEqual(['first: ']);
      void read().then((answer) => answered.push(`second: ${answer}`));
      await vi.advanceTimersByTimeAsync(1000);
      expect(answered).toEqual(['first: ', 'second: ']);
    } finally {
      vi.useRealTimers();
    }
  });
});
