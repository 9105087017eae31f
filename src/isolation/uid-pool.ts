import { randomUUID } from 'node:crypto';
import { open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processStartTime } from '../executor/index.js';
import { IsolationError } from './errors.js';

/** Who holds a uid: a worker process, named by pid and start time so a recycled pid is told. */
export interface LeaseOwner {
  readonly workerId: string;
  readonly pid: number;
  readonly startTime: string;
}

export interface UidLease {
  readonly uid: number;
  release(): Promise<void>;
}

export interface UidPoolOptions {
  readonly leaseDir: string;
  readonly base: number;
  readonly count: number;
  readonly owner: LeaseOwner;
  /** Uids that belong to someone already (accounts in /etc/passwd): never handed out. */
  readonly taken: ReadonlySet<number>;
  /** Stops whatever still runs as a uid before it is reused (a dead worker's leftovers). */
  readonly clear: (uid: number) => Promise<void>;
}

/**
 * Hands out the uids runs execute as, each to one run at a time, across every worker on this
 * host that shares the lease directory: a lease is a file created exclusively, naming its
 * worker. A lease whose worker is gone is taken over, after its uid's processes are stopped.
 */
export class UidPool {
  private readonly held = new Set<number>();

  constructor(private readonly options: UidPoolOptions) {}

  get size(): number {
    return this.options.count;
  }

  async acquire(): Promise<UidLease> {
    const { base, count, taken } = this.options;
    for (let uid = base; uid < base + count; uid++) {
      if (this.held.has(uid) || taken.has(uid)) continue;
      if (await this.tryLease(uid)) {
        this.held.add(uid);
        await this.options.clear(uid);
        return { uid, release: () => this.release(uid) };
      }
    }
    throw new IsolationError(
      `uid pool exhausted: all ${count} uids from ${base} (RUN_UID_BASE, RUN_UID_COUNT) are in use by runs on this host`,
    );
  }

  private async tryLease(uid: number): Promise<boolean> {
    const path = this.leasePath(uid);
    if (await this.create(path)) return true;
    const holder = await readLease(path);
    if (holder === undefined || (await isAlive(holder))) return false;
    // Its worker is gone: take the lease over, once, even if another worker tries too.
    const stale = `${path}.stale-${randomUUID()}`;
    try {
      await rename(path, stale);
    } catch {
      return false;
    }
    await unlink(stale).catch(() => undefined);
    return this.create(path);
  }

  private async create(path: string): Promise<boolean> {
    try {
      const file = await open(path, 'wx', 0o600);
      await file.writeFile(JSON.stringify(this.options.owner));
      await file.close();
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new IsolationError(
        `cannot create a uid lease in ${this.options.leaseDir}: ${(error as Error).message}`,
      );
    }
  }

  private async release(uid: number): Promise<void> {
    if (!this.held.delete(uid)) return;
    await unlink(this.leasePath(uid)).catch(() => undefined);
  }

  private leasePath(uid: number): string {
    return join(this.options.leaseDir, String(uid));
  }
}

/** The uids of the leases that `workerId` holds in `leaseDir` (for its watchdog). */
export async function leasesOf(leaseDir: string, workerId: string): Promise<number[]> {
  const names = await readdir(leaseDir).catch(() => [] as string[]);
  const uids: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const holder = await readLease(join(leaseDir, name));
    if (holder?.workerId === workerId) uids.push(Number(name));
  }
  return uids;
}

async function readLease(path: string): Promise<LeaseOwner | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
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
      return { workerId: value.workerId, pid: value.pid, startTime: value.startTime };
    }
  } catch {
    // Gone, or half written by a worker that is creating it right now.
    return undefined;
  }
  // Unreadable leftovers of something else count as taken: never guess a uid is free.
  return undefined;
}

async function isAlive(owner: LeaseOwner): Promise<boolean> {
  return (await processStartTime(owner.pid)) === owner.startTime;
}
