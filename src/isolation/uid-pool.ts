import { randomUUID } from 'node:crypto';
import { open, readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { processStartTime } from '../executor/index.js';
import { IsolationError } from './errors.js';

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
  /** Stops whatever still runs as a uid taken over from a dead worker, before it is reused. */
  readonly clear: (uid: number) => Promise<void>;
}

/**
 * Hands out the uids runs execute as, each to one run at a time, across every worker on this
 * host that shares the lease directory: a lease is a file created exclusively, naming its
 * worker. A lease whose worker is gone is ended (see endLease) and taken over, after its uid's
 * processes are stopped.
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
      const leased = await this.tryLease(uid);
      if (leased === false) continue;
      this.held.add(uid);
      // A lease is given back only once nothing of its run is left (the box's last sweep), so
      // only a dead worker's uid can still have processes.
      if (leased === 'taken over') await this.options.clear(uid);
      return { uid, release: () => this.release(uid) };
    }
    throw new IsolationError(
      `uid pool exhausted: all ${count} uids from ${base} (RUN_UID_BASE, RUN_UID_COUNT) are in use by runs on this host`,
    );
  }

  private async tryLease(uid: number): Promise<'free' | 'taken over' | false> {
    const path = this.leasePath(uid);
    if (await this.create(path)) return 'free';
    const holder = await readLease(path);
    if (holder === undefined || (await isAlive(holder))) return false;
    // Its worker is gone: the uid's processes are stopped once it is ours (acquire clears it).
    const ended = await endLease(this.options.leaseDir, uid, holder, () => Promise.resolve());
    return ended && (await this.create(path)) ? 'taken over' : false;
  }

  private async create(path: string): Promise<boolean> {
    try {
      const file = await open(path, 'wx', 0o600);
      const record: LeaseRecord = { ...this.options.owner, lease: randomUUID() };
      await file.writeFile(JSON.stringify(record));
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

/** The leases that `workerId` holds in `leaseDir` (for its watchdog). */
export async function leasesOf(
  leaseDir: string,
  workerId: string,
): Promise<{ readonly uid: number; readonly held: LeaseRecord }[]> {
  const names = await readdir(leaseDir).catch(() => [] as string[]);
  const leases: { uid: number; held: LeaseRecord }[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const held = await readLease(join(leaseDir, name));
    if (held?.workerId === workerId) leases.push({ uid: Number(name), held });
  }
  return leases;
}

/**
 * Ends the lease `held` of `uid`, whose worker is gone: runs `stop` (which stops the uid's
 * processes, where needed), then removes the lease file. Returns false, doing neither, when
 * the lease is no longer that one or somebody else is ending it. Whoever ends a lease first
 * creates a claim named after it, exclusively, so of the workers taking a dead worker's uid
 * over and that worker's watchdog exactly one ends it, and none of them removes, or stops the
 * run of, a lease made since. A claimant that dies within these few steps leaves its claim,
 * and the uid stays taken: never handed out twice.
 */
export async function endLease(
  leaseDir: string,
  uid: number,
  held: LeaseRecord,
  stop: () => Promise<void>,
): Promise<boolean> {
  const path = join(leaseDir, String(uid));
  const claim = join(leaseDir, `${uid}.ending-${held.lease}`);
  try {
    await (await open(claim, 'wx', 0o600)).close();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    // Read again under the claim: only a claimant may remove the lease it names.
    if ((await readLease(path))?.lease !== held.lease) return false;
    await stop();
    await unlink(path);
    return true;
  } finally {
    await unlink(claim).catch(() => undefined);
  }
}

async function readLease(path: string): Promise<LeaseRecord | undefined> {
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

async function isAlive(owner: LeaseOwner): Promise<boolean> {
  return (await processStartTime(owner.pid)) === owner.startTime;
}
