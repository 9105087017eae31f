import { describe, expect, it } from 'vitest';
import { ActiveRuns } from '../../src/worker/attempt/active-runs.js';

describe('active runs', () => {
  it('stops a run with the reason given, and says when it runs no such job', () => {
    const runs = new ActiveRuns();
    const signal = runs.begin('42');
    expect(runs.stop('42', { cause: 'cancelled', message: 'enough' })).toBe(true);
    expect(signal.reason).toEqual({ cause: 'cancelled', message: 'enough' });
    expect(runs.stop('43', { cause: 'cancelled', message: 'enough' })).toBe(false);
  });

  it('does not let an attempt that ends forget a newer attempt of the same job', () => {
    const runs = new ActiveRuns();
    const old = runs.begin('42');
    const newer = runs.begin('42');
    runs.end('42', old);
    expect(runs.stop('42', { cause: 'cancelled', message: 'x' })).toBe(true);
    expect(newer.aborted).toBe(true);
    runs.end('42', newer);
    expect(runs.has('42')).toBe(false);
  });

  it('after stopAll, stops a run that begins later (a job fetched as shutdown began)', () => {
    const runs = new ActiveRuns();
    runs.stopAll({ cause: 'shutdown', message: 'bye' });
    expect(runs.begin('7').reason).toEqual({ cause: 'shutdown', message: 'bye' });
  });

  it('names the runs whose lock was not renewed within the lock duration', () => {
    let now = 1000;
    const runs = new ActiveRuns(() => now);
    runs.begin('a');
    runs.begin('b');
    now += 20_000;
    runs.lockRenewed(['a']);
    now += 15_000;
    expect(runs.unlocked(30_000)).toEqual(['b']);
    now += 20_000;
    expect(runs.unlocked(30_000)).toEqual(['a', 'b']);
    // Named once: a run being stopped is on its way out.
    runs.stop('b', { cause: 'abandoned', message: 'lock lost' });
    expect(runs.stopping('b')).toBe(true);
    expect(runs.unlocked(30_000)).toEqual(['a']);
  });
});
