import { lstatSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** World-writable places a run without a mount namespace of its own can leave files in. */
export const SHARED_TEMP_DIRS: readonly string[] = ['/tmp', '/var/tmp', '/dev/shm', '/run/lock'];

/** Entries looked at between two turns of the event loop, as in ownership.ts. */
const SLICE = 256;

/**
 * The kernel sets a directory's mtime from a clock that lags the real one by up to a tick: a
 * directory changed this shortly before it is stamped might change again within the same tick,
 * unseen, so its stamp is not kept.
 */
const SETTLED_MS = 50;

/** Each shared temporary directory's mtime when a run began, where it can be relied on. */
export type TempStamp = ReadonlyMap<string, bigint>;

/** Stamps `dirs` before a run starts, for removeFilesOf to pass over what the run left alone. */
export function stampTempDirs(dirs = SHARED_TEMP_DIRS, now = Date.now()): TempStamp {
  const stamp = new Map<string, bigint>();
  for (const dir of dirs) {
    const info = statSync(dir, { bigint: true, throwIfNoEntry: false });
    if (info !== undefined && now - Number(info.mtimeMs) > SETTLED_MS) stamp.set(dir, info.mtimeNs);
  }
  return stamp;
}

/**
 * Removes what `uid` left at the top of `dirs`. With `since`, a directory whose entries did not
 * change after it was stamped is passed over without reading every entry of a busy /tmp: the
 * run added nothing there, and a uid that is not leased has nothing there either (every run's
 * end removes it, and so does taking over or freeing a dead worker's uid).
 */
export async function removeFilesOf(
  uid: number,
  { dirs = SHARED_TEMP_DIRS, since }: { dirs?: readonly string[]; since?: TempStamp } = {},
): Promise<void> {
  for (const dir of dirs) {
    const stamped = since?.get(dir);
    if (stamped !== undefined && modified(dir) === stamped) continue;
    // Synchronous, in slices: a promise per entry cost the worker several times more.
    let looked = 0;
    for (const name of entriesOf(dir)) {
      const path = join(dir, name);
      if (ownerOf(path) === uid)
        await rm(path, { recursive: true, force: true }).catch(() => undefined);
      if (++looked % SLICE === 0) await nextTurn();
    }
  }
}

/** The names in `dir`, or none when it cannot be read. */
export function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function modified(dir: string): bigint | undefined {
  return statSync(dir, { bigint: true, throwIfNoEntry: false })?.mtimeNs;
}

function ownerOf(path: string): number | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false })?.uid;
  } catch {
    return undefined;
  }
}
