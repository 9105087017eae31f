import { randomUUID } from 'node:crypto';
import { closeSync, openSync, unlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { IsolationError } from './errors.js';
import { forgetHanded, forgetLeft, recordHanded, recordLeft } from './handed-dirs.js';
import { forgetReach, recordReach, type UnclearedRun } from './uncleared-reach.js';
import { holderIsAlive, readLease, type LeaseOwner, type LeaseRecord } from './lease-file.js';
import { CLAIM_WAIT_MS, claimEnding, claimUnderWay, dropClaims } from './lease-claims.js';

export interface UidLease {
  readonly uid: number;
  /**
   * Records the directories about to be handed to the run, for whoever clears the uid to take
   * back where the run's box does not (see takeBackHanded); the record goes with the lease.
   */
  handing(dirs: readonly string[]): void;
  /**
   * Records directories that are to go once the uid is cleared (a set-aside run's scratch
   * directory, its job over): whoever clears the uid removes them (see removeLeft).
   */
  leaving(dirs: readonly string[]): void;
  release(): Promise<void>;
  /**
   * Something of the run could not be stopped: the uid stays leased, out of every run's reach,
   * while the pool clears it again now and then (see UidPoolOptions.clear); once that succeeds,
   * it is back in the pool. `reached`: the directories the run could reach, which no other run
   * gets, and nothing removes, meanwhile (see unclearedReaching).
   */
  setAside(reached?: readonly string[]): void;
}

export interface UidPoolOptions {
  readonly leaseDir: string;
  readonly base: number;
  readonly count: number;
  readonly owner: LeaseOwner;
  /** Uids that belong to someone already (accounts in /etc/passwd): never handed out. */
  readonly taken: ReadonlySet<number>;
  /**
   * Stops whatever still runs as a uid taken over from a dead worker, or set aside by a run,
   * and removes what it left (the run under `lease`), before the uid is reused; throws when it
   * cannot.
   */
  readonly clear: (uid: number, lease: string) => Promise<void>;
  /** How long a set-aside uid waits before it is first cleared again; each failure doubles it. */
  readonly retryAfterMs?: number;
}

/** A set-aside uid is tried again after 10 s, 20 s, 40 s... and then every 10 minutes. */
const FIRST_RETRY_MS = 10_000;
const LAST_RETRY_MS = 600_000;

/**
 * Hands out the uids runs execute as, each to one run at a time, across every worker on this
 * host that shares the lease directory: a lease is a file created exclusively, naming its
 * worker. A lease whose worker is gone is ended (see endLease) and taken over, after its uid's
 * processes are stopped.
 */
export class UidPool {
  /** The uids this worker holds, each with the id of its lease (see LeaseRecord). */
  private readonly held = new Map<number, string>();
  /** Set-aside uids waiting for their next clearing, and the clearings under way. */
  private readonly waiting = new Map<number, NodeJS.Timeout>();
  private readonly clearing = new Set<Promise<void>>();
  private closed = false;
  /**
   * Where the next look for a free uid starts: past the last one handed out. The processes of
   * a run killed at its end count against its uid's process cap until the host's init reaps
   * them (a second or more on some hosts): handed out in turn, a uid's next run on this worker
   * comes as late as its pool allows.
   */
  private next = 0;

  constructor(private readonly options: UidPoolOptions) {}

  get size(): number {
    return this.options.count;
  }

  async acquire(): Promise<UidLease> {
    const { base, count, taken } = this.options;
    const start = this.next;
    for (let tried = 0; tried < count; tried++) {
      const uid = base + ((start + tried) % count);
      if (this.held.has(uid) || taken.has(uid)) continue;
      // Moved on before the lease is tried: a takeover may take seconds, and the runs that
      // start meanwhile go on from here.
      this.next = (uid - base + 1) % count;
      const lease = await this.tryLease(uid);
      if (lease === null) continue;
      this.held.set(uid, lease);
      // Whichever of the two comes first ends the run's use of the lease; the other is ignored.
      let over = false;
      return {
        uid,
        handing: (dirs) => recordHanded(this.options.leaseDir, uid, { lease, dirs }),
        leaving: (dirs) => recordLeft(this.options.leaseDir, uid, { lease, dirs }),
        release: () => {
          if (over) return Promise.resolve();
          over = true;
          return this.release(uid);
        },
        setAside: (reached = []) => {
          if (over) return;
          over = true;
          recordReach(this.options.leaseDir, uid, { lease, dirs: reached });
          this.clearLater(uid, this.options.retryAfterMs ?? FIRST_RETRY_MS);
        },
      };
    }
    throw new IsolationError(
      `uid pool exhausted: all ${count} uids from ${base} (RUN_UID_BASE, RUN_UID_COUNT) are in use by runs on this host`,
    );
  }

  /**
   * Stops clearing set-aside uids, and waits for a clearing under way: once the worker is gone
   * its watchdog ends its leases, and another worker may then run as one of those uids.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    await Promise.all(this.clearing);
  }

  /** Leases `uid`: the id of the new lease, or null when it is not to be had. */
  private async tryLease(uid: number): Promise<string | null> {
    const path = this.leasePath(uid);
    const lease = this.create(path);
    if (lease !== null) return lease;
    const holder = readLease(path);
    if (holder === undefined || holderIsAlive(holder)) return null;
    // Its worker is gone. A lease is given back only once nothing of its run is left (the box's
    // last sweep), so only a dead worker's uid can still have processes or files: they go before
    // the lease does, so no worker gets the uid as free meanwhile. A uid that cannot be cleared
    // stays taken, and the next one is tried.
    return (await this.endDeadLease(uid, holder)) ? this.create(path) : null;
  }

  /** Whether this pool holds `uid` (its run's, or set aside). */
  holds(uid: number): boolean {
    return this.held.has(uid);
  }

  /**
   * Takes a dead worker's run's uid over as acquire does when it comes to it (see
   * unclearedReaching): the run's processes stopped and what it left cleared away, then its
   * lease ended. True once that lease is over, ended here or by another meanwhile (the dead
   * worker's watchdog, or another worker: this waits up to CLAIM_WAIT_MS for one under way);
   * false where the uid could not be cleared.
   */
  async takeOver({ uid, held }: Pick<UnclearedRun, 'uid' | 'held'>): Promise<boolean> {
    const ended = (): boolean => readLease(this.leasePath(uid))?.lease !== held.lease;
    const { leaseDir } = this.options;
    for (let waited = 0; ; waited += 50) {
      if ((await this.endDeadLease(uid, held)) || ended()) return true;
      // Nobody else at it (its claimant died, or the uid could not be cleared), or too long.
      if (!claimUnderWay(leaseDir, uid, held.lease) || waited >= CLAIM_WAIT_MS) return false;
      await sleep(50);
    }
  }

  /** Ends a dead worker's lease of `uid` once the pool's clear has cleared its run away. */
  private endDeadLease(uid: number, held: LeaseRecord): Promise<boolean> {
    return endLease(this.options.leaseDir, uid, held, () =>
      this.options.clear(uid, held.lease),
    ).catch(() => false);
  }

  /**
   * Creates the lease file: the new lease's id, or null when the file exists. Synchronous, as
   * are the lease's other calls: a few bytes in a directory of root's own, where a promise each
   * cost the worker more than the call (a round trip through the thread pool).
   */
  private create(path: string): string | null {
    try {
      const file = openSync(path, 'wx', 0o600);
      const lease = randomUUID();
      try {
        const record: LeaseRecord = { ...this.options.owner, lease };
        writeFileSync(file, JSON.stringify(record));
      } finally {
        closeSync(file);
      }
      return lease;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return null;
      throw new IsolationError(
        `cannot create a uid lease in ${this.options.leaseDir}: ${(error as Error).message}`,
      );
    }
  }

  /**
   * Clears a set-aside uid in the background, later and later until that works, then gives it
   * back. A process the kernel cannot kill yet (one stuck in an uninterruptible wait) may end in
   * time, and a worker that never gave such a uid back would run out of uids.
   */
  private clearLater(uid: number, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.waiting.delete(uid);
      const clearing = this.clearAgain(uid, delayMs);
      this.clearing.add(clearing);
      void clearing.finally(() => this.clearing.delete(clearing));
    }, delayMs);
    // Shutdown does not wait for it (see close).
    timer.unref();
    this.waiting.set(uid, timer);
  }

  private async clearAgain(uid: number, delayMs: number): Promise<void> {
    // Only under its own lease: a uid whose lease somebody ended is no longer this pool's.
    const lease = this.held.get(uid);
    if (lease === undefined || !this.holdsLease(uid)) {
      this.held.delete(uid);
      return;
    }
    const cleared = await this.options.clear(uid, lease).then(
      () => true,
      () => false,
    );
    if (cleared) await this.release(uid);
    else this.clearLater(uid, Math.min(delayMs * 2, LAST_RETRY_MS));
  }

  private release(uid: number): Promise<void> {
    const ours = this.holdsLease(uid);
    if (!this.held.delete(uid) || !ours) return Promise.resolve();
    forgetReach(this.options.leaseDir, uid);
    forgetHanded(this.options.leaseDir, uid);
    forgetLeft(this.options.leaseDir, uid);
    try {
      unlinkSync(this.leasePath(uid));
    } catch {
      // Gone already: removed by whoever ended it.
    }
    return Promise.resolve();
  }

  /** Whether the lease file of `uid` is still the one this pool created. */
  private holdsLease(uid: number): boolean {
    const lease = this.held.get(uid);
    return lease !== undefined && readLease(this.leasePath(uid))?.lease === lease;
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
    const held = readLease(join(leaseDir, name));
    if (held?.workerId === workerId) leases.push({ uid: Number(name), held });
  }
  return leases;
}

/**
 * Ends the lease `held` of `uid`, whose worker is gone: runs `stop` (which stops the uid's
 * processes, where needed), then removes the lease file. Returns false, doing neither, when
 * the lease is no longer that one or somebody else is ending it. Whoever ends a lease claims
 * it first, exclusively (see lease-claims.ts), so of the workers taking a dead worker's uid over
 * and that worker's watchdog exactly one ends it, and none of them removes, or stops the run
 * of, a lease made since. A claimant that died within these few steps is followed by the next.
 */
export async function endLease(
  leaseDir: string,
  uid: number,
  held: LeaseRecord,
  stop: () => Promise<void>,
): Promise<boolean> {
  const path = join(leaseDir, String(uid));
  const claimed = claimEnding(leaseDir, uid, held.lease);
  if (claimed === null) return false;
  try {
    // Read again under the claim: only a claimant may remove the lease it names.
    if (readLease(path)?.lease !== held.lease) return false;
    await stop();
    await unlink(path);
    return true;
  } finally {
    dropClaims(leaseDir, uid, held.lease, claimed);
  }
}
