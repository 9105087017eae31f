import { lstatSync, readdirSync, statSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { SLICE } from '../common/held-tree.js';
import { isInside } from '../common/paths.js';
import { removeTree } from '../common/remove-tree.js';
import { takeBack } from './ownership.js';

/**
 * World-writable places a run without a mount namespace of its own can leave files in;
 * /dev/mqueue holds the POSIX message queues of the worker's IPC namespace (Docker mounts it).
 */
export const SHARED_TEMP_DIRS: readonly string[] = [
  '/tmp',
  '/var/tmp',
  '/dev/shm',
  '/run/lock',
  '/dev/mqueue',
];

/**
 * The kernel sets a directory's mtime from a clock that lags the real one by up to a tick: a
 * directory changed this shortly before it is stamped might change again within the same tick,
 * unseen, so its stamp is not kept. A file system that keeps whole seconds only (an mtime with
 * no fraction) rounds a later change in the same second to the same mtime: COARSE_SETTLED_MS.
 */
const SETTLED_MS = 50;
const COARSE_SETTLED_MS = 2000;

/** Each shared temporary directory's mtime when a run began, where it can be relied on. */
export type TempStamp = ReadonlyMap<string, bigint>;

/** Stamps `dirs` before a run starts, for removeFilesOf to pass over what the run left alone. */
export function stampTempDirs(dirs = SHARED_TEMP_DIRS, now = Date.now()): TempStamp {
  const stamp = new Map<string, bigint>();
  for (const dir of dirs) {
    const mtimeNs = modified(dir);
    if (mtimeNs === undefined) continue;
    const settled = mtimeNs % 1_000_000_000n === 0n ? COARSE_SETTLED_MS : SETTLED_MS;
    if (now - Number(mtimeNs / 1_000_000n) > settled) stamp.set(dir, mtimeNs);
  }
  return stamp;
}

export interface RemovalOptions {
  readonly dirs?: readonly string[] | undefined;
  /** Each directory's stamp from when the run began (see stampTempDirs). */
  readonly since?: TempStamp | undefined;
  /**
   * WORK_DIR, where it holds a shared directory (WORK_DIR=/tmp): a directory of the uid inside
   * it may be a job's working directory, which a dead worker's run still has and the job's next
   * attempt needs. It is closed (root's, 0700, as at every run's end) instead of removed.
   */
  readonly spare?: string | undefined;
}

/**
 * Removes what `uid` left at the top of `dirs`. With `since`, a directory whose entries did not
 * change after it was stamped is passed over without reading every entry of a busy /tmp: the
 * run added nothing there, and a uid that is not leased has nothing there either (every run's
 * end removes it, and so does taking over or freeing a dead worker's uid).
 */
export async function removeFilesOf(
  uid: number,
  { dirs = SHARED_TEMP_DIRS, since, spare }: RemovalOptions = {},
): Promise<void> {
  for (const dir of dirs) {
    const stamped = since?.get(dir);
    if (stamped !== undefined && modified(dir) === stamped) continue;
    // Synchronous, in slices: a promise per entry cost the worker several times more. What
    // cannot be read or removed throws: the uid must not go back to the pool with it there.
    let looked = 0;
    // Names as bytes: one that is no UTF-8, read as a string, would name nothing there.
    const parent = Buffer.from(`${dir}/`);
    for (const name of namesIn(dir)) {
      const path = Buffer.concat([parent, name]);
      const entry = lstatSync(path, { throwIfNoEntry: false });
      if (entry?.uid === uid) {
        if (spare !== undefined && entry.isDirectory() && isInside(path.toString(), spare)) {
          takeBack(path);
        }
        // Another uid's run may write in what the run left open to others: never by its paths.
        else await removeTree(path);
      }
      if (++looked % SLICE === 0) await nextTurn();
    }
  }
}

/** The names in `dir`; none where it does not exist. */
function namesIn(dir: string): Buffer[] {
  try {
    return readdirSync(dir, { encoding: 'buffer' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The directory's mtime, or undefined where it is not there or cannot be looked at. */
function modified(dir: string): bigint | undefined {
  try {
    return statSync(dir, { bigint: true, throwIfNoEntry: false })?.mtimeNs;
  } catch {
    return undefined;
  }
}
