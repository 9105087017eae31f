import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lchownSync,
  lstatSync,
  openSync,
  readdirSync,
  type Stats,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SLICE } from '../common/remove-tree.js';

/** Which owners' files a run may be handed: root's (the operator's checkout) and the pool's. */
export type MayTake = (owner: number) => boolean;

/**
 * Makes a directory tree the run's own: every entry owned by root or by another run's uid goes
 * to `uid` (symlinks themselves, never what they point to), and the top becomes 0700 so no
 * other uid can enter. A root-owned file with more than one link is left alone: it may be a
 * hard link to a file outside the tree.
 */
export async function handOver(dir: string, uid: number, mayTake: MayTake): Promise<void> {
  const take = (path: string, info: Stats): void => {
    if (info.uid === uid && info.gid === uid) return;
    if (!mayTake(info.uid)) return;
    if (info.uid === 0 && !info.isDirectory() && info.nlink > 1) return;
    lchownSync(path, uid, uid);
  };
  take(dir, lstatSync(dir));
  chmodSync(dir, 0o700);
  const stack = [dir];
  let handled = 0;
  while (stack.length > 0) {
    const current = stack.pop() as string;
    for (const name of readdirSync(current)) {
      const path = join(current, name);
      const info = lstatSync(path);
      take(path, info);
      if (info.isDirectory()) stack.push(path);
      if (++handled % SLICE === 0) await nextTurn();
    }
  }
}

/**
 * Closes a run's directory to every run: root's again, 0700, until the next hand-over. Does
 * nothing where it is gone (the run may have removed its working directory) or is no directory
 * any more (a symlink the run put in its place is never followed), nor, given `onlyFrom`, where
 * another uid owns it.
 */
export function takeBack(dir: string, onlyFrom?: number): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch {
    // Gone, or replaced by what the run left: the next hand-over looks at it again.
    return;
  }
  try {
    if (onlyFrom !== undefined && fstatSync(fd).uid !== onlyFrom) return;
    fchownSync(fd, 0, 0);
    fchmodSync(fd, 0o700);
  } finally {
    closeSync(fd);
  }
}

/**
 * Lets a run walk (not list) from `root` down to `dir`: the directories between them get the
 * search bit for others, which a nested working directory needs to be reached at all.
 */
export function openPathTo(root: string, dir: string): void {
  const steps: string[] = [];
  for (let current = dirname(dir); ; current = dirname(current)) {
    steps.push(current);
    if (current === root || relative(root, current).startsWith('..') || current === '/') break;
  }
  for (const step of steps) {
    const info = lstatSync(step);
    if ((info.mode & 0o001) === 0) chmodSync(step, (info.mode & 0o7777) | 0o001);
  }
}
