import {
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chownSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { handOver, openPathTo, takeBack } from '../../src/isolation/ownership.js';

const POOL = { base: 64000, count: 10 };
const mayTake = (owner: number): boolean =>
  owner === 0 || (owner >= POOL.base && owner < POOL.base + POOL.count);

describe('handing a working directory to a run', () => {
  it('gives every entry of root or of another run to the run’s uid, and closes the top to others', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-own-'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'a.txt'), 'a');
    writeFileSync(join(dir, 'written-by-attempt-1.txt'), 'b');
    chownSync(join(dir, 'written-by-attempt-1.txt'), 64001, 64001);

    await handOver(dir, 64002, mayTake);

    for (const path of [
      dir,
      join(dir, 'src'),
      join(dir, 'src', 'a.txt'),
      join(dir, 'written-by-attempt-1.txt'),
    ]) {
      expect(lstatSync(path)).toMatchObject({ uid: 64002, gid: 64002 });
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    takeBack(dir);
    expect(statSync(dir)).toMatchObject({ uid: 0, gid: 0 });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('never follows a symlink, leaves hard links to root’s files and other users’ files alone', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'claudebox-outside-'));
    const target = join(outside, 'precious');
    writeFileSync(target, 'root only');
    const someoneElses = join(outside, 'theirs');
    writeFileSync(someoneElses, 'x');

    const dir = mkdtempSync(join(tmpdir(), 'claudebox-own-'));
    symlinkSync(target, join(dir, 'link'));
    linkSync(target, join(dir, 'hardlink'));
    writeFileSync(join(dir, 'user-file'), 'x');
    chownSync(join(dir, 'user-file'), 1234, 1234);

    await handOver(dir, 64003, mayTake);

    expect(lstatSync(join(dir, 'link')).uid).toBe(64003);
    expect(statSync(target).uid).toBe(0);
    expect(lstatSync(join(dir, 'hardlink')).uid).toBe(0);
    expect(lstatSync(join(dir, 'user-file')).uid).toBe(1234);
  });

  it('opens the way down to a nested working directory for passing only', () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-root-'));
    mkdirSync(join(root, 'team', 'repo'), { recursive: true, mode: 0o700 });
    openPathTo(root, join(root, 'team', 'repo'));
    expect(statSync(join(root, 'team')).mode & 0o007).toBe(0o001);
    expect(statSync(root).mode & 0o007).toBe(0o001);
    expect(statSync(join(root, 'team', 'repo')).mode & 0o007).toBe(0);
  });
});
