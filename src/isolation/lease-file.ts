import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveStartTime } from '../common/proc-stat.js';

/** Who holds a uid: a worker process, named by pid and start time so a recycled pid is told. */
export interface LeaseOwner {
  readonly workerId: string;
  readonly pid: number;
  readonly startTime: string;
}

/** Whether the worker that holds a lease is still there (not a later process with its pid). */
export function holderIsAlive(owner: LeaseOwner): boolean {
  return liveStartTime(owner.pid) === owner.startTime;
}

/** What a lease file holds: its worker, and an id of this lease of its own. */
export interface LeaseRecord extends LeaseOwner {
  readonly lease: string;
}

/** The lease in the file at `path`; undefined where there is none, or none readable. */
export function readLease(path: string): LeaseRecord | undefined {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (
      typeof value === 'object' &&
      value !== null &&
      'workerId' in value &&
      'pid' in value &&
      'startTime' in value &&
      typeof value.workerId === 'string' &&
      typeof value.pid === 'number' &&
      typeof value.startTime === 'string'
    ) {
      const { workerId, pid, startTime } = value;
      // Leases written before they had ids of their own are told apart by their worker.
      const lease =
        'lease' in value && typeof value.lease === 'string'
          ? value.lease
          : `${workerId}:${pid}:${startTime}`;
      return { workerId, pid, startTime, lease };
    }
  } catch {
    // Gone, or half written by a worker that is creating it right now.
    return undefined;
  }
  // Unreadable leftovers of something else count as taken: never guess a uid is free.
  return undefined;
}

/** Directories noted beside a uid's lease, under the id of the lease they belong to. */
export interface LeaseDirs {
  readonly lease: string;
  readonly dirs: readonly string[];
}

/**
 * A note of directories kept beside each uid's lease, in `<uid>.<kind>`: written, read back
 * (undefined where there is none, or none readable) and forgotten.
 */
export function leaseDirsNote(kind: string) {
  const path = (leaseDir: string, uid: number): string => join(leaseDir, `${uid}.${kind}`);
  return {
    write(leaseDir: string, uid: number, note: LeaseDirs): void {
      writeFileSync(path(leaseDir, uid), JSON.stringify(note), { mode: 0o600 });
    },
    read(leaseDir: string, uid: number): LeaseDirs | undefined {
      try {
        const value = JSON.parse(readFileSync(path(leaseDir, uid), 'utf8')) as Partial<LeaseDirs>;
        if (typeof value.lease !== 'string' || !Array.isArray(value.dirs)) return undefined;
        return { lease: value.lease, dirs: value.dirs.filter((dir) => typeof dir === 'string') };
      } catch {
        return undefined;
      }
    },
    forget(leaseDir: string, uid: number): void {
      try {
        unlinkSync(path(leaseDir, uid));
      } catch {
        // Never written, or gone already.
      }
    },
  };
}
