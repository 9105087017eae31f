import { lstatSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { takeBack } from './ownership.js';

/**
 * The directories a uid's run was handed (its working directory and the job's others), kept
 * beside the uid's lease in `<uid>.handed` from before they are handed over until the run's box
 * takes them back. A run that never got that far (its worker died, or its uid was set aside)
 * leaves the record, and whoever clears the uid later takes them back then: otherwise the next
 * run of that uid, another job's, could enter them.
 */
const handedPath = (leaseDir: string, uid: number): string => join(leaseDir, `${uid}.handed`);

export function recordHanded(leaseDir: string, uid: number, dirs: readonly string[]): void {
  writeFileSync(handedPath(leaseDir, uid), JSON.stringify(dirs), { mode: 0o600 });
}

export function forgetHanded(leaseDir: string, uid: number): void {
  try {
    unlinkSync(handedPath(leaseDir, uid));
  } catch {
    // Never recorded, or gone already.
  }
}

/**
 * Takes back what the record says `uid` was handed and still owns (a directory handed to
 * another run since is that run's now), then forgets the record. Call it only once nothing of
 * the uid runs any more.
 */
export function takeBackHanded(leaseDir: string, uid: number): void {
  for (const dir of readHanded(leaseDir, uid)) {
    try {
      const info = lstatSync(dir);
      if (info.isDirectory() && info.uid === uid) takeBack(dir);
    } catch {
      // Gone: nothing to take back.
    }
  }
  forgetHanded(leaseDir, uid);
}

function readHanded(leaseDir: string, uid: number): string[] {
  try {
    const value: unknown = JSON.parse(readFileSync(handedPath(leaseDir, uid), 'utf8'));
    return Array.isArray(value) ? value.filter((dir) => typeof dir === 'string') : [];
  } catch {
    return [];
  }
}
