import { describe, expect, it } from 'vitest';
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
});
