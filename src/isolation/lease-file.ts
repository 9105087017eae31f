import { readFileSync } from 'node:fs';

/** Who holds a uid: a worker process, named by pid and start time so a recycled pid is told. */
export interface LeaseOwner {
  readonly workerId: string;
  readonly pid: number;
  readonly startTime: string;
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
