import {
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { scratchDirs } from '../../src/isolation/scratch-dirs.js';
import type { UnclearedReach } from '../../src/isolation/uncleared-reach.js';

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Scratch directories in a root of their own; those of `reachedJobs` are within reach of a run. */
function scratchRoot(reachedJobs: string[] = []) {
  const root = mkdtempSync(join(tmpdir(), 'claudebox-scratch-'));
  roots.push(root);
  const reaching = (dirs: readonly string[]): Promise<UnclearedReach | null> => {
    const reached = reachedJobs.map((key) => scratch.scratchDir(key));
    const dir = dirs.find((wanted) => reached.includes(wanted));
    return Promise.resolve(dir === undefined ? null : { uid: 64_020, dir });
  };
  const scratch = scratchDirs(root, reaching);
  return { root, scratch };
}

/** Makes each job's directory with a file in it, as its run would leave it. */
function madeWithFiles(scratch: ReturnType<typeof scratchDirs>, jobKeys: string[]): string[] {
  return jobKeys.map((key) => {
    scratch.makeScratch(key);
    const dir = scratch.scratchDir(key);
    writeFileSync(join(dir, 'work.txt'), key);
    return dir;
  });
}

describe("a job's scratch directory", () => {
  it('is private to root until a run is handed it, and stays with its files across attempts', () => {
    const { root, scratch } = scratchRoot();
    const [dir = ''] = madeWithFiles(scratch, ['bull:q:1']);
    expect(statSync(dir)).toMatchObject({ uid: 0, mode: 0o40700 });
    scratch.makeScratch('bull:q:1');
    expect(readFileSync(join(dir, 'work.txt'), 'utf8')).toBe('bull:q:1');
    expect(dir.startsWith(`${root}/`)).toBe(true);
    expect(scratch.scratchDir('bull:q:2')).not.toBe(dir);
  });

  it("is swept away once its job is over or gone, its queue's only, never while a run is in it or could be", async () => {
    const { scratch } = scratchRoot();
    const keys = ['bull:q:over', 'bull:q:waiting', 'bull:q:running', 'bull:other:over'];
    const [over, waiting, running, otherQueue] = madeWithFiles(scratch, keys);
    // A run holds it: handed to its uid.
    chownSync(running ?? '', 64_021, 64_021);
    const asked: string[][] = [];
    const removed = await scratch.sweepScratch('bull:q:', (jobKeys) => {
      asked.push(jobKeys);
      return Promise.resolve(jobKeys.map((key) => key !== 'bull:q:waiting'));
    });
    expect(removed).toBe(1);
    expect(asked.map((jobKeys) => [...jobKeys].sort())).toEqual([
      ['bull:q:over', 'bull:q:running', 'bull:q:waiting'],
    ]);
    expect(existsSync(over ?? '')).toBe(false);
    expect(existsSync(`${over ?? ''}.job`)).toBe(false);
    for (const kept of [waiting, running, otherQueue]) {
      expect(existsSync(join(kept ?? '', 'work.txt'))).toBe(true);
    }
  });

  it('is kept by a sweep when a run is handed it while the sweep looks for runs that could reach it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-scratch-'));
    roots.push(root);
    const scratch = scratchDirs(root, (dirs) => {
      // Another worker's attempt of a job of the same key hands the directory to its run.
      for (const dir of dirs) chownSync(dir, 64_022, 64_022);
      return Promise.resolve(null);
    });
    const [dir = ''] = madeWithFiles(scratch, ['bull:q:again']);
    const allOver = (keys: string[]) => Promise.resolve(keys.map(() => true));
    expect(await scratch.sweepScratch('bull:q:', allOver)).toBe(0);
    expect(readFileSync(join(dir, 'work.txt'), 'utf8')).toBe('bull:q:again');
  });

  it('is kept, by the sweep and at its job’s end, while an earlier run not cleared away could reach it', async () => {
    const { scratch } = scratchRoot(['bull:q:1']);
    const [dir = ''] = madeWithFiles(scratch, ['bull:q:1']);
    const allOver = (keys: string[]) => Promise.resolve(keys.map(() => true));
    expect(await scratch.sweepScratch('bull:q:', allOver)).toBe(0);
    await expect(scratch.removeScratch('bull:q:1')).rejects.toThrow(
      'could not be cleared yet, may still be there',
    );
    expect(existsSync(join(dir, 'work.txt'))).toBe(true);
  });
});
