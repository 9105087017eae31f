import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { thisProcess } from '../../src/workspace/holder.js';
import { withLock } from '../../src/workspace/lock.js';

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function lockPath(): string {
  const root = mkdtempSync(join(tmpdir(), 'claudebox-lock-'));
  roots.push(root);
  return join(root, 'x.lock');
}

/** Whether `withLock` got the lock within `ms`. */
async function takenWithin(path: string, ms: number): Promise<boolean> {
  const taken = withLock(path, () => Promise.resolve(true));
  const late = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms));
  return Promise.race([taken, late]);
}

describe("a workspace lock's file", () => {
  it('names its holder and goes once the work is done', async () => {
    const path = lockPath();
    let seen = '';
    await withLock(path, () => {
      seen = existsSync(path) ? 'held' : 'missing';
      return Promise.resolve();
    });
    expect(seen).toBe('held');
    expect(existsSync(path)).toBe(false);
  });

  it('is taken over from a holder that is gone', async () => {
    const path = lockPath();
    // No process has a pid above pid_max.
    writeFileSync(path, '999999999 1');
    expect(await takenWithin(path, 2000)).toBe(true);
  });

  it('is taken over when it names nobody and is older than a write takes, not before', async () => {
    const path = lockPath();
    // What a worker killed between creating the file and writing it left.
    writeFileSync(path, '');
    expect(await takenWithin(path, 300)).toBe(false);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    expect(await takenWithin(path, 2000)).toBe(true);
  });
});

describe('a wait for a workspace lock', () => {
  it("ends with the stop's reason when the waiter stops, and the next in line still waits its turn", async () => {
    const path = lockPath();
    let release: () => void = () => undefined;
    const holding = withLock(path, () => new Promise<void>((resolve) => (release = resolve)));
    const stop = new AbortController();
    const order: string[] = [];
    const stopped = withLock(path, () => Promise.resolve(order.push('stopped one')), stop.signal);
    const next = withLock(path, () => Promise.resolve(order.push('next')));

    stop.abort(new Error('the job was cancelled'));
    await expect(stopped).rejects.toThrow('the job was cancelled');
    // The holder still holds it: the one after the stopped waiter must not have it yet.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(order).toEqual([]);
    release();
    await holding;
    await next;
    expect(order).toEqual(['next']);
  });

  it("ends while a live worker's file holds it, leaving the file alone", async () => {
    const path = lockPath();
    // Named after a process that runs: this one, as another worker of the host would be.
    const me = thisProcess();
    writeFileSync(path, `${me.pid} ${me.started}`);
    const stop = new AbortController();
    const waiting = withLock(path, () => Promise.resolve('taken'), stop.signal);
    setTimeout(() => stop.abort(new Error('shutting down')), 100);
    await expect(waiting).rejects.toThrow('shutting down');
    expect(existsSync(path)).toBe(true);
  });
});
