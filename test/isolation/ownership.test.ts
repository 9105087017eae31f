import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
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

  it('hands over entries whose names are bytes that are no UTF-8 (a checkout can hold them)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-own-'));
    const odd = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from('caf\xe9', 'latin1')]);
    const inside = Buffer.concat([odd, Buffer.from('/r\xe9sum\xe9.txt', 'latin1')]);
    mkdirSync(odd);
    writeFileSync(inside, 'x');

    await handOver(dir, 64002, mayTake);
    expect([lstatSync(odd).uid, lstatSync(inside).uid]).toEqual([64002, 64002]);
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

  it('never walks through a directory another run swapped for a symlink meanwhile', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'claudebox-outside-'));
    writeFileSync(join(outside, 'precious'), 'root only');
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-own-'));
    // The hand-over lets other work run within the first of these it walks, the others listed.
    const subs = ['a', 'b', 'c'];
    for (const sub of subs) {
      mkdirSync(join(dir, sub));
      for (let i = 0; i < 300; i++) writeFileSync(join(dir, sub, `f${i}`), '');
    }
    const handing = handOver(dir, 64004, mayTake);
    // What a process of another uid can do where a tree's directories let it in.
    for (const sub of subs) {
      renameSync(join(dir, sub), join(dir, `${sub}.old`));
      symlinkSync(outside, join(dir, sub));
    }
    await handing;
    expect(lstatSync(join(outside, 'precious')).uid).toBe(0);
    expect(lstatSync(outside).uid).toBe(0);
  });

  it('refuses a top that is a symlink, leaving what it points to alone', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'claudebox-outside-'));
    chmodSync(outside, 0o755);
    const link = join(mkdtempSync(join(tmpdir(), 'claudebox-own-')), 'work');
    symlinkSync(outside, link);
    await expect(handOver(link, 64005, mayTake)).rejects.toThrow(/is no directory to hand over/);
    expect(statSync(outside).uid).toBe(0);
    expect(statSync(outside).mode & 0o777).toBe(0o755);
  });

  it('opens the way down to a nested working directory for passing only', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-root-'));
    mkdirSync(join(root, 'team', 'repo'), { recursive: true, mode: 0o700 });
    await openPathTo(root, join(root, 'team', 'repo'));
    expect(statSync(join(root, 'team')).mode & 0o007).toBe(0o001);
    expect(statSync(root).mode & 0o007).toBe(0o001);
    expect(statSync(join(root, 'team', 'repo')).mode & 0o007).toBe(0);
  });

  it('closes what earlier runs left on the way down, to every other run and to their old uids', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-root-'));
    const p = join(root, 'p');
    const q = join(p, 'q');
    // An earlier job's working directory, taken back: root's, 0700, its files still its uid's.
    mkdirSync(join(q, 'r'), { recursive: true });
    mkdirSync(join(p, 'left-dir'));
    mkdirSync(join(p, 'in-use'), { mode: 0o700 });
    writeFileSync(join(p, 'secret.txt'), 'of the earlier job', { mode: 0o644 });
    writeFileSync(join(q, 'notes.txt'), 'of the earlier job', { mode: 0o644 });
    for (const path of [
      q,
      join(q, 'r'),
      join(q, 'notes.txt'),
      join(p, 'secret.txt'),
      join(p, 'left-dir'),
    ]) {
      chownSync(path, 64001, 64001);
    }
    chmodSync(q, 0o777);
    chownSync(join(p, 'in-use'), 64002, 64002);
    // A file with another link may be a running run's: left as it is.
    writeFileSync(join(p, 'linked'), 'x', { mode: 0o644 });
    linkSync(join(p, 'linked'), join(p, 'linked-again'));
    chownSync(join(p, 'linked'), 64003, 64003);
    chmodSync(p, 0o700);

    await openPathTo(root, join(q, 'r'), mayTake, (path) => path === join(p, 'in-use'));

    expect(statSync(p)).toMatchObject({ uid: 0, mode: expect.any(Number) });
    expect(statSync(p).mode & 0o777).toBe(0o701);
    // On the way: root's (its group too), and no run can change what is in it.
    expect(statSync(q)).toMatchObject({ uid: 0, gid: 0 });
    expect(statSync(q).mode & 0o777).toBe(0o775);
    for (const left of [join(p, 'secret.txt'), join(q, 'notes.txt')]) {
      expect(lstatSync(left).uid).toBe(0);
      expect(lstatSync(left).mode & 0o777).toBe(0o600);
    }
    expect(lstatSync(join(p, 'left-dir')).uid).toBe(0);
    expect(lstatSync(join(p, 'left-dir')).mode & 0o777).toBe(0o700);
    // The run's own directory is the hand-over's; one a run going on now has is left alone.
    expect(lstatSync(join(q, 'r')).uid).toBe(64001);
    expect(lstatSync(join(p, 'in-use')).uid).toBe(64002);
    expect(lstatSync(join(p, 'linked'))).toMatchObject({ uid: 64003, mode: expect.any(Number) });
    expect(lstatSync(join(p, 'linked')).mode & 0o777).toBe(0o644);
  });

  it('keeps a group from writing on the way only where it is a pool uid’s', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-root-'));
    for (const [name, gid] of [
      ['pool', 64001],
      ['operators', 1234],
    ] as const) {
      mkdirSync(join(root, name, 'repo'), { recursive: true });
      chownSync(join(root, name), 0, gid);
      chmodSync(join(root, name), 0o2775);
      await openPathTo(root, join(root, name, 'repo'), mayTake);
    }
    expect(statSync(join(root, 'pool')).mode & 0o7777).toBe(0o2755);
    expect(statSync(join(root, 'operators')).mode & 0o7777).toBe(0o2775);
  });

  it('never follows a symlink on the way down', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-root-'));
    const outside = mkdtempSync(join(tmpdir(), 'claudebox-outside-'));
    mkdirSync(join(outside, 'repo'));
    symlinkSync(outside, join(root, 'team'));
    await expect(openPathTo(root, join(root, 'team', 'repo'), mayTake)).rejects.toThrow(
      /team is no directory/,
    );
    expect(statSync(outside).mode & 0o777).toBe(0o700);
  });
});
