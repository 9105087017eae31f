import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInside, listOrNothing } from '../common/paths.js';
import { readLease } from './lease-file.js';

/**
 * The directories a set-aside uid's run could reach (its working directory and the job's
 * others), kept beside the uid's lease in `<uid>.reach` while the uid stays set aside: a process
 * of that run may still be there. Every worker sharing the lease directory sees it, so a job's
 * next attempt, on any of them, neither hands those directories to another run nor removes them
 * as root meanwhile.
 */
interface Reach {
  /** The id of the lease the uid is set aside under: the record holds only while that does. */
  readonly lease: string;
  readonly dirs: readonly string[];
}

const reachPath = (leaseDir: string, uid: number): string => join(leaseDir, `${uid}.reach`);

export function recordReach(leaseDir: string, uid: number, reach: Reach): void {
  writeFileSync(reachPath(leaseDir, uid), JSON.stringify(reach), { mode: 0o600 });
}

export function forgetReach(leaseDir: string, uid: number): void {
  try {
    unlinkSync(reachPath(leaseDir, uid));
  } catch {
    // Never recorded, or gone already.
  }
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
    const reach = readReach(join(leaseDir, name));
    if (reach === undefined || readLease(join(leaseDir, String(uid)))?.lease !== reach.lease) {
      forgetReach(leaseDir, uid);
      continue;
    }
    const dir = dirs.find((wanted) =>
      reach.dirs.some((reached) => isInside(wanted, reached) || isInside(reached, wanted)),
    );
    if (dir !== undefined) return { uid, dir };
  }
  return null;
}

function readReach(path: string): Reach | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<Reach>;
    if (typeof value.lease !== 'string' || !Array.isArray(value.dirs)) return undefined;
    return { lease: value.lease, dirs: value.dirs.filter((d) => typeof d === 'string') };
  } catch {
    return undefined;
  }
}
