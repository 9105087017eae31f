import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';

/** The lease directory of the default RUN_ROOT, which the test workers share. */
export const DEFAULT_LEASE_DIR = join(loadConfig({}).RUN_ROOT, 'leases');

/** A set-aside uid of the tests' making. */
export interface PlantedSetAside {
  /** Its lease ends, as when the uid is cleared: the note of its reach no longer holds. */
  clear(): void;
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
): PlantedSetAside {
  mkdirSync(leases, { recursive: true });
  const lease = { workerId: 'alive', pid: process.pid, startTime: '1', lease: randomUUID() };
  const leaseFile = join(leases, String(uid));
  const reach = join(leases, `${uid}.reach`);
  writeFileSync(leaseFile, JSON.stringify(lease));
  writeFileSync(reach, JSON.stringify({ lease: lease.lease, dirs }));
  return {
    clear: () => rmSync(leaseFile, { force: true }),
    remove: () => {
      rmSync(reach, { force: true });
      rmSync(leaseFile, { force: true });
    },
  };
}
