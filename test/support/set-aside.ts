import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readProcStat } from '../../src/common/proc-stat.js';
import { loadConfig } from '../../src/config/config.js';

/** The lease directory of the default RUN_ROOT, which the test workers share. */
export const DEFAULT_LEASE_DIR = join(loadConfig({}).RUN_ROOT, 'leases');

/** A lease of the tests' making, with a note of its run's directories beside it. */
export interface PlantedLease {
  /** Its lease ends, as when the uid is cleared: the note no longer holds. */
  clear(): void;
  /** Whether its lease was ended (the uid cleared, or taken over). */
  ended(): boolean;
  /** Takes the lease and the note away, whatever happened. */
  remove(): void;
}

/**
 * Makes `uid` look set aside by a live worker (this process), its run able to reach `dirs`: what
 * a run leaves when a process of it outlasts every kill. Pick a uid outside every test's pool.
 */
export function plantSetAside(
  uid: number,
  dirs: readonly string[],
  leases = DEFAULT_LEASE_DIR,
): PlantedLease {
  const startTime = readProcStat(process.pid)?.startTime ?? '';
  return plantLease(uid, { workerId: 'alive', pid: process.pid, startTime }, 'reach', dirs, leases);
}

/**
 * Makes `uid` look leased by a worker that died before it or its watchdog cleared its run, which
 * was handed `dirs`: what a worker and its watchdog, both killed, leave. Pick a uid outside every
 * test's pool.
 */
export function plantDeadWorkersRun(
  uid: number,
  dirs: readonly string[],
  leases = DEFAULT_LEASE_DIR,
): PlantedLease {
  // No process has that pid (above pid_max): the worker is gone.
  return plantLease(
    uid,
    { workerId: 'dead', pid: 999_999_999, startTime: '1' },
    'handed',
    dirs,
    leases,
  );
}

function plantLease(
  uid: number,
  holder: { readonly workerId: string; readonly pid: number; readonly startTime: string },
  note: 'reach' | 'handed',
  dirs: readonly string[],
  leases: string,
): PlantedLease {
  mkdirSync(leases, { recursive: true });
  const lease = { ...holder, lease: randomUUID() };
  const leaseFile = join(leases, String(uid));
  const noteFile = join(leases, `${uid}.${note}`);
  writeFileSync(leaseFile, JSON.stringify(lease));
  writeFileSync(noteFile, JSON.stringify({ lease: lease.lease, dirs }));
  return {
    clear: () => rmSync(leaseFile, { force: true }),
    ended: () => !existsSync(leaseFile),
    remove: () => {
      rmSync(noteFile, { force: true });
      rmSync(leaseFile, { force: true });
    },
  };
}
