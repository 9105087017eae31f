import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { takeBack } from './ownership.js';

/**
 * The directories a uid's run was handed (its working directory and the job's others), kept
 * beside the uid's lease in `<uid>.handed` from before they are handed over until the run's box
 * takes them back. A run that never got that far (its worker died, or its uid was set aside)
 * leaves the record, and whoever clears the uid later takes them back then: otherwise the next
 * run of that uid, another job's, could enter them.
 */
interface Handed {
  /** The id of the lease the run had: a record of a later lease is that run's, not this one's. */
  readonly lease: string;
  readonly dirs: readonly string[];
}

const handedPath = (leaseDir: string, uid: number): string => join(leaseDir, `${uid}.handed`);

export function recordHanded(leaseDir: string, uid: number, handed: Handed): void {
  writeFileSync(handedPath(leaseDir, uid), JSON.stringify(handed), { mode: 0o600 });
}

export function forgetHanded(leaseDir: string, uid: number): void {
  try {
    unlinkSync(handedPath(leaseDir, uid));
  } catch {
    // Never recorded, or gone already.
  }
}

/**
 * Takes back what the run under `lease` was handed and `uid` still owns (a directory handed to
 * another run since is that run's now), then forgets the record; a record of another lease
 * stays. Call it only once nothing of the uid runs any more.
 */
export function takeBackHanded(leaseDir: string, uid: number, lease: string): void {
  const handed = readHanded(leaseDir, uid);
  if (handed?.lease !== lease) return;
  for (const dir of handed.dirs) takeBack(dir, uid);
  forgetHanded(leaseDir, uid);
}

function readHanded(leaseDir: string, uid: number): Handed | undefined {
  try {
    const value = JSON.parse(readFileSync(handedPath(leaseDir, uid), 'utf8')) as Partial<Handed>;
    if (typeof value.lease !== 'string' || !Array.isArray(value.dirs)) return undefined;
    return { lease: value.lease, dirs: value.dirs.filter((dir) => typeof dir === 'string') };
  } catch {
    return undefined;
  }
}
