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
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { errorMessage } from '../common/errors.js';
import { holdDir, inHeld, SLICE, walkHeld } from '../common/held-tree.js';

/** Which owners' files a run may be handed: root's (the operator's checkout) and the pool's. */
export type MayTake = (owner: number) => boolean;

/**
 * Makes a directory tree the run's own: every entry owned by root or by another run's uid goes
 * to `uid` (symlinks themselves, never what they point to, and never through a directory another
 * run swapped for a symlink meanwhile: see walkHeld), and the top becomes 0700 so no other uid
 * can enter. A root-owned file with more than one link is left alone: it may be a hard link to a
 * file outside the tree. Throws where `dir` is no directory (a symlink put in its place).
 */
export async function handOver(dir: string, uid: number, mayTake: MayTake): Promise<void> {
  const mayGo = (info: Stats): boolean =>
    !(info.uid === uid && info.gid === uid) &&
    mayTake(info.uid) &&
    !(info.uid === 0 && !info.isDirectory() && info.nlink > 1);
  const top = holdDir(dir);
  if (top === undefined) throw new Error(`${dir} is no directory to hand over`);
  try {
    if (mayGo(fstatSync(top))) fchownSync(top, uid, uid);
    fchmodSync(top, 0o700);
    await walkHeld(top, {
      entry: (parent, entry) => {
        const path = inHeld(parent, entry.name);
        const info = lstatSync(path);
        if (mayGo(info)) lchownSync(path, uid, uid);
        return info.isDirectory();
      },
    });
  } catch (error) {
    // Its entries were reached as /proc/self/fd/<fd>/<name>: name the tree.
    throw new Error(`cannot hand ${dir} to uid ${uid}: ${errorMessage(error)}`, { cause: error });
  } finally {
    closeSync(top);
  }
}

/**
 * Closes a run's directory to every run: root's again, 0700, until the next hand-over. Does
 * nothing where it is gone (the run may have removed its working directory) or is no directory
 * any more (a symlink the run put in its place is never followed), nor, given `onlyFrom`, where
 * another uid owns it.
 */
export function takeBack(dir: string | Buffer, onlyFrom?: number): void {
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

/** Whether a run going on now was handed the directory at a path, or one in or above it. */
export type InUse = (path: string) => boolean;

/**
 * Lets a run walk (not list) from `root` down to `dir`: `root` and every directory between them
 * get the search bit for others. Walked by descriptors (see walkHeld), never through a symlink.
 * On the way, a directory an earlier run owned becomes root's, and none stays writable by others
 * (nor by its group where that is a pool uid's): no run can swap what lies on another's way.
 * What an earlier run left in them beside the way (owned by a pool uid: `mayTake`) becomes
 * root's and closed to group and others, but a directory a run going on now was handed
 * (`inUse`) and a file with other links (it may be such a run's too): else the way down would
 * open it to every run, and to the next run of its old uid. The next hand-over of such a
 * directory is its run's. In slices, between turns of the event loop.
 */
export async function openPathTo(
  root: string,
  dir: string,
  mayTake: MayTake = () => false,
  inUse: InUse = () => false,
): Promise<void> {
  const way = relative(root, dir).split(sep).slice(0, -1);
  if (way[0] === '..' || isAbsolute(way[0] ?? '')) return;
  let held = holdDir(root);
  if (held === undefined) throw new Error(`${root} is no directory`);
  let path = root;
  try {
    const mode = fstatSync(held).mode & 0o7777;
    if ((mode & 0o001) === 0) fchmodSync(held, mode | 0o001);
    for (const [index, name] of way.entries()) {
      const next = holdDir(inHeld(held, name));
      if (next === undefined) throw new Error(`${join(path, name)} is no directory`);
      closeSync(held);
      held = next;
      path = join(path, name);
      const info = fstatSync(held);
      const earlierRuns = info.uid !== 0 && mayTake(info.uid);
      if (earlierRuns) fchownSync(held, 0, 0);
      const gid = earlierRuns ? 0 : info.gid;
      const mode = info.mode & 0o7777;
      const wanted = (mode & ~(gid !== 0 && mayTake(gid) ? 0o022 : 0o002)) | 0o001;
      if (wanted !== mode) fchmodSync(held, wanted);
      // Only in a directory of root's can nothing in it change meanwhile.
      if (info.uid === 0 || earlierRuns) {
        await closeLeftovers(held, path, way[index + 1] ?? basename(dir), mayTake, inUse);
      }
    }
  } finally {
    closeSync(held);
  }
}

/**
 * Makes what earlier runs left in the directory held as `dir` (at `path`) root's and closed to
 * group and others, but the entry `keep` (the way on), directories in use and files with other
 * links (see openPathTo).
 */
async function closeLeftovers(
  dir: number,
  path: string,
  keep: string,
  mayTake: MayTake,
  inUse: InUse,
): Promise<void> {
  let looked = 0;
  const kept = Buffer.from(keep);
  // Names as bytes (see inHeld).
  for (const name of readdirSync(inHeld(dir), { encoding: 'buffer' })) {
    if (++looked % SLICE === 0) await nextTurn();
    if (name.equals(kept)) continue;
    const entry = inHeld(dir, name);
    const info = lstatSync(entry, { throwIfNoEntry: false });
    if (info === undefined || info.uid === 0 || !mayTake(info.uid)) continue;
    if (info.isDirectory() ? inUse(join(path, name.toString())) : info.nlink > 1) continue;
    lchownSync(entry, 0, 0);
    if (!info.isSymbolicLink()) chmodSync(entry, info.mode & 0o700);
  }
}
