import { leaseDirsNote, type LeaseDirs } from './lease-file.js';
import { takeBack } from './ownership.js';
import { removeTree } from '../common/remove-tree.js';

/**
 * The directories a uid's run was handed (its working directory and the job's others), kept
 * beside the uid's lease in `<uid>.handed` from before they are handed over until the run's box
 * takes them back. A run that never got that far (its worker died, or its uid was set aside)
 * leaves the note, and whoever clears the uid later takes them back then: otherwise the next
 * run of that uid, another job's, could enter them. The note names its lease: a note of a later
 * lease is that run's, not this one's.
 */
const handed = leaseDirsNote('handed');

export function recordHanded(leaseDir: string, uid: number, note: LeaseDirs): void {
  handed.write(leaseDir, uid, note);
}

/** What the run under the uid's lease was handed and not given back yet, if anything. */
export function readHanded(leaseDir: string, uid: number): LeaseDirs | undefined {
  return handed.read(leaseDir, uid);
}

export function forgetHanded(leaseDir: string, uid: number): void {
  handed.forget(leaseDir, uid);
}

/**
 * Takes back what the run under `lease` was handed and `uid` still owns (a directory handed to
 * another run since is that run's now), then forgets the note; a note of another lease stays.
 * Call it only once nothing of the uid runs any more.
 */
export function takeBackHanded(leaseDir: string, uid: number, lease: string): void {
  const note = handed.read(leaseDir, uid);
  if (note?.lease !== lease) return;
  for (const dir of note.dirs) takeBack(dir, uid);
  handed.forget(leaseDir, uid);
}

/**
 * The directories of a set-aside run's job that are to go once nothing of the run is left (its
 * scratch directory, the job being over), kept beside the uid's lease in `<uid>.left`: the
 * worker removes nothing as root that a process of the run could still change, so whoever clears
 * the uid removes them then.
 */
const left = leaseDirsNote('left');

export function recordLeft(leaseDir: string, uid: number, note: LeaseDirs): void {
  left.write(leaseDir, uid, note);
}

export function forgetLeft(leaseDir: string, uid: number): void {
  left.forget(leaseDir, uid);
}

/**
 * Removes what the run under `lease` left to go with its uid's clearing, then forgets the note;
 * a note of another lease stays. Call it only once nothing of the uid runs any more. A tree that
 * cannot be removed stays, as it would have without the note: it keeps no uid from the pool.
 */
export async function removeLeft(leaseDir: string, uid: number, lease: string): Promise<void> {
  const note = left.read(leaseDir, uid);
  if (note?.lease !== lease) return;
  for (const dir of note.dirs) await removeTree(dir).catch(() => undefined);
  left.forget(leaseDir, uid);
}
