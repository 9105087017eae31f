import { join } from 'node:path';
import { isInside, listOrNothing } from '../common/paths.js';
import { readHanded } from './handed-dirs.js';
import {
  holderIsAlive,
  leaseDirsNote,
  readLease,
  type LeaseDirs,
  type LeaseRecord,
} from './lease-file.js';

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

/** A uid whose run was never cleared away, and a directory that run could reach. */
export interface UnclearedReach {
  readonly uid: number;
  readonly dir: string;
}

/** A run not cleared away, and the lease its uid is under (see endLease). */
export interface UnclearedRun extends UnclearedReach {
  readonly held: LeaseRecord;
}

/**
 * A set-aside run that could reach one of `dirs` (that directory, one inside it, or one it is
 * inside), or null. A record whose lease has ended since (the uid was cleared, by its pool or a
 * dead worker's watchdog) no longer holds, and goes.
 */
export function setAsideReaching(leaseDir: string, dirs: readonly string[]): UnclearedReach | null {
  const [run] = setAsideRunsReaching(leaseDir, dirs, listOrNothing(leaseDir));
  return run === undefined ? null : { uid: run.uid, dir: run.dir };
}

/** How a worker deals with the runs of dead workers (see UidPool). */
export interface DeadWorkersRuns {
  /** Clears such a run's uid away and ends its lease; false where it could not. */
  takeOver(run: UnclearedRun): Promise<boolean>;
  /** Whether the worker holds the uid's lease itself: its own run's, never a dead worker's. */
  holds(uid: number): boolean;
}

/**
 * An earlier run not cleared away that could reach one of `dirs`, or null: a process of it may
 * still be there. A set-aside uid's run, or a run its worker left when it died (handed those
 * directories, or set aside), which is taken over first, and counts only where that fails.
 */
export async function unclearedReaching(
  leaseDir: string,
  dirs: readonly string[],
  deadWorkersRuns: DeadWorkersRuns,
): Promise<UnclearedReach | null> {
  const names = listOrNothing(leaseDir);
  const others = (uids: number[]) => uids.filter((uid) => !deadWorkersRuns.holds(uid));
  const runs = [
    ...setAsideRunsReaching(leaseDir, dirs, names),
    ...handedRunsReaching(leaseDir, dirs, others(notedUids(names, 'handed'))),
  ];
  for (const run of runs) {
    const dead = !holderIsAlive(run.held);
    if (!dead || !(await deadWorkersRuns.takeOver(run))) return { uid: run.uid, dir: run.dir };
  }
  return null;
}

/** A run of another uid, its worker alive, and the directories it was handed. */
export interface RunningRun {
  readonly uid: number;
  readonly dirs: readonly string[];
}

/**
 * The runs of uids other than `ownUid`, their workers alive, that were handed directories and
 * have not given them back: they run, or are being closed. One read of the lease directory, for
 * the check before a hand-over and for the way down to it (see runReaching). Synchronous, so
 * that a worker checks and records what it hands (recordHanded) with nothing of its own in
 * between.
 */
export function runningRuns(leaseDir: string, ownUid: number): RunningRun[] {
  const uids = notedUids(listOrNothing(leaseDir), 'handed').filter((uid) => uid !== ownUid);
  return uids.flatMap((uid) => {
    const note = readHanded(leaseDir, uid);
    if (note === undefined) return [];
    const held = leaseNoted(leaseDir, uid, note);
    return held !== undefined && holderIsAlive(held) ? [{ uid, dirs: note.dirs }] : [];
  });
}

/**
 * The first of `runs` that could reach one of `dirs` (that directory, one inside it, or one it
 * is inside), with that directory; null where none could.
 */
export function runReaching(
  runs: readonly RunningRun[],
  dirs: readonly string[],
): UnclearedReach | null {
  for (const run of runs) {
    const dir = reachedOf(run.dirs, dirs);
    if (dir !== undefined) return { uid: run.uid, dir };
  }
  return null;
}

/** The set-aside runs (see recordReach) that could reach one of `dirs`, with their leases. */
function setAsideRunsReaching(
  leaseDir: string,
  dirs: readonly string[],
  names: readonly string[],
): UnclearedRun[] {
  const runs: UnclearedRun[] = [];
  for (const uid of notedUids(names, 'reach')) {
    const note = reach.read(leaseDir, uid);
    const held = note === undefined ? undefined : leaseNoted(leaseDir, uid, note);
    if (note === undefined || held === undefined) {
      forgetReach(leaseDir, uid);
      continue;
    }
    const dir = reachedOf(note.dirs, dirs);
    if (dir !== undefined) runs.push({ uid, dir, held });
  }
  return runs;
}

/**
 * The runs of `uids` that were handed one of `dirs` (see recordHanded) under a lease whose
 * worker is gone: its watchdog, gone too or not done yet, has not ended that lease, so nothing
 * has stopped the run's processes. Where namespaces are off, a run's children outlive its worker.
 */
function handedRunsReaching(
  leaseDir: string,
  dirs: readonly string[],
  uids: readonly number[],
): UnclearedRun[] {
  return handedReaching(leaseDir, dirs, uids).filter(({ held }) => !holderIsAlive(held));
}

/** The runs of `uids` that were handed one of `dirs` under the lease their uid is still under. */
function handedReaching(
  leaseDir: string,
  dirs: readonly string[],
  uids: readonly number[],
): UnclearedRun[] {
  const runs: UnclearedRun[] = [];
  for (const uid of uids) {
    // Other runs' notes seldom name one of `dirs`: their leases are read only where one does.
    const note = readHanded(leaseDir, uid);
    const dir = note === undefined ? undefined : reachedOf(note.dirs, dirs);
    if (note === undefined || dir === undefined) continue;
    const held = leaseNoted(leaseDir, uid, note);
    if (held !== undefined) runs.push({ uid, dir, held });
  }
  return runs;
}

/**
 * The lease `uid` is under, where it is still the one `note` was written under; undefined where
 * the uid is under another lease since, or none.
 */
function leaseNoted(leaseDir: string, uid: number, note: LeaseDirs): LeaseRecord | undefined {
  const held = readLease(join(leaseDir, String(uid)));
  return held?.lease === note.lease ? held : undefined;
}

/** The uids with a `<uid>.<kind>` note among the lease directory's `names`. */
function notedUids(names: readonly string[], kind: string): number[] {
  const suffix = `.${kind}`;
  return names
    .filter((name) => name.endsWith(suffix) && /^\d+$/.test(name.slice(0, -suffix.length)))
    .map((name) => Number(name.slice(0, -suffix.length)));
}

/** The first of `wanted` that is one of `reached`, inside one, or holds one. */
function reachedOf(reached: readonly string[], wanted: readonly string[]): string | undefined {
  return wanted.find((dir) =>
    reached.some((other) => isInside(dir, other) || isInside(other, dir)),
  );
}
