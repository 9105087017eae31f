import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { removeFilesOf, stampTempDirs } from '../../src/isolation/shared-temp.js';

/** Uids no other test's runs use. */
const UID = 64_301;
const OTHER = 64_302;

const roots: string[] = [];
afterAll(() => roots.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A directory standing in for /tmp, changed longer ago than a stamp needs. */
async function settledDir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-shared-temp-'));
  roots.push(dir);
  await sleep(100);
  return dir;
}

/** Creates `name` in `dir` (a directory with a file in it, for a name ending in /), owned by `uid`. */
function leave(dir: string, name: string, uid: number): string {
  const path = join(dir, name);
  if (name.endsWith('/')) {
    mkdirSync(path);
    writeFileSync(join(path, 'inside'), 'x');
    chownSync(join(path, 'inside'), uid, uid);
  } else {
    writeFileSync(path, 'x');
  }
  chownSync(path, uid, uid);
  return path;
}

describe('what a run leaves in the shared temporary directories', () => {
  it('is removed: every entry of its uid, directories with what is in them, nothing of others', async () => {
    const dir = await settledDir();
    const file = leave(dir, 'file', UID);
    const tree = leave(dir, 'tree/', UID);
    const rootOwned = leave(dir, 'root-owned', 0);
    const others = leave(dir, 'others', OTHER);
    await removeFilesOf(UID, { dirs: [dir] });
    expect([file, tree, rootOwned, others].map(existsSync)).toEqual([false, false, true, true]);
  });

  it('is removed whatever bytes its names are, UTF-8 or not, inside its directories too', async () => {
    const dir = await settledDir();
    const odd = (name: string) =>
      Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name, 'latin1')]);
    const file = odd('leak\xff');
    const tree = odd('d\xfe');
    const inside = Buffer.concat([tree, Buffer.from('/x\xff', 'latin1')]);
    writeFileSync(file, 'secret');
    mkdirSync(tree);
    writeFileSync(inside, 'secret');
    for (const path of [file, tree, inside]) chownSync(path, UID, UID);

    await removeFilesOf(UID, { dirs: [dir] });
    expect([file, tree].map((path) => existsSync(path))).toEqual([false, false]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('is removed under a name that is no UTF-8 however deep it nests, past what a walk holds open', async () => {
    const dir = await settledDir();
    let path = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from('deep\xff', 'latin1')]);
    const top = path;
    for (let level = 0; level < 300; level++) {
      mkdirSync(path);
      chownSync(path, UID, UID);
      path = Buffer.concat([path, Buffer.from('/d')]);
    }

    await removeFilesOf(UID, { dirs: [dir] });
    expect(existsSync(top)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('is looked for in a directory that changed after the run began', async () => {
    const dir = await settledDir();
    const since = stampTempDirs([dir]);
    expect(since.has(dir)).toBe(true);
    const file = leave(dir, 'file', UID);
    await removeFilesOf(UID, { dirs: [dir], since });
    expect(existsSync(file)).toBe(false);
  });

  it('is not looked for in a directory nothing was added to or removed from since the run began', async () => {
    const dir = await settledDir();
    // Only a dead worker's run could have left this: taking its uid over removes it.
    const before = leave(dir, 'before', UID);
    await sleep(100);
    const since = stampTempDirs([dir]);
    writeFileSync(before, 'changed, not added');
    await removeFilesOf(UID, { dirs: [dir], since });
    expect(existsSync(before)).toBe(true);
    await removeFilesOf(UID, { dirs: [dir] });
    expect(existsSync(before)).toBe(false);
  });

  it('is looked for where the directory changed just before the stamp, within the clock’s tick', async () => {
    const dir = await settledDir();
    const file = leave(dir, 'file', UID);
    const since = stampTempDirs([dir], statSync(dir).mtimeMs + 10);
    expect(since.has(dir)).toBe(false);
    await removeFilesOf(UID, { dirs: [dir], since });
    expect(existsSync(file)).toBe(false);
  });

  it('is looked for where the file system keeps whole seconds and the change was within two', async () => {
    const dir = await settledDir();
    const file = leave(dir, 'file', UID);
    const wholeSecond = Math.floor(Date.now() / 1000) - 1;
    utimesSync(dir, wholeSecond, wholeSecond);
    expect(stampTempDirs([dir], wholeSecond * 1000 + 1000).has(dir)).toBe(false);
    expect(stampTempDirs([dir], wholeSecond * 1000 + 3000).has(dir)).toBe(true);
    await removeFilesOf(UID, {
      dirs: [dir],
      since: stampTempDirs([dir], wholeSecond * 1000 + 1000),
    });
    expect(existsSync(file)).toBe(false);
  });
});
