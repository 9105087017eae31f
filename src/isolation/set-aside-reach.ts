import { join } from 'node:path';
import { isInside, listOrNothing } from '../common/paths.js';
import { leaseDirsNote, readLease, type LeaseDirs } from './lease-file.js';

/**
 * The directories a set-aside uid's run could reach (its working directory and the job's
 * others), kept beside the uid's lease in `<uid>.reach` while the uid stays set aside: a process
 * of that run may still be there. Every worker sharing the lease directory sees it, so a job's
 * next attempt, on any of them, neither hands those directories to another run nor removes them
 * as root meanwhile. The note holds only while the lease it names does.
 */
const reach = leaseDirsNote('reach');

export function recordReach(leaseDir: string, uid: number, note: LeaseDirs): void {
  reach.write(leaseDir, uid, note);
}

export function forgetReach(leaseDir: string, uid: number): void {
  reach.forget(leaseDir, uid);
}

/** A set-aside uid, and a directory its run could reach. */
export interface SetAsideReach {
  readonly uid: number;
  readonly dir: string;
}

/**
 * A set-aside run that could reach one of `dirs` (that directory, one inside it, or one it is
 * inside), or null. A record whose lease has ended since (the uid was cleared, by its pool or a
 * dead worker's watchdog) no longer holds, and goes.
 */
export function setAsideReaching(leaseDir: string, dirs: readonly string[]): SetAsideReach | null {
  for (const name of listOrNothing(leaseDir)) {
    const uid = Number(/^(\d+)\.reach$/.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(uid)) continue;
    const note = reach.read(leaseDir, uid);
    if (note === undefined || readLease(join(leaseDir, String(uid)))?.lease !== note.lease) {
      forgetReach(leaseDir, uid);
      continue;
    }
    const dir = dirs.find((wanted) =>
      note.dirs.some((reached) => isInside(wanted, reached) || isInside(reached, wanted)),
    );
    if (dir !== undefined) return { uid, dir };
  }
  return null;
}
