import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { processStartTime } from '../../src/executor/index.js';
import { endLease, leasesOf } from '../../src/isolation/index.js';
import { UidPool } from '../../src/isolation/uid-pool.js';
import { recordHanded } from '../../src/isolation/handed-dirs.js';
import { recordReach } from '../../src/isolation/uncleared-reach.js';
import { unclearedReaching } from '../../src/isolation/uncleared-reach.js';

const UID = 64000;

async function pool(leaseDir: string, cleared: number[] = [], clearing = true, count = 1) {
  const owner = {
    workerId: randomUUID(),
    pid: process.pid,
    startTime: (await processStartTime(process.pid)) ?? '',
  };
  const uids = new UidPool({
    leaseDir,
    base: UID,
    count,
    owner,
    taken: new Set(),
    clear: (uid) =>
      clearing
        ? Promise.resolve(void cleared.push(uid))
        : Promise.reject(new Error(`a process of uid ${uid} outlived every kill`)),
  });
  return { owner, uids };
}

/** A lease directory where uid 64000 is held by a worker that died. */
function deadWorkersLease(): string {
  const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
  writeFileSync(
    join(leaseDir, String(UID)),
    JSON.stringify({ workerId: 'dead', pid: 999_999_999, startTime: '1', lease: 'gone' }),
  );
  return leaseDir;
}

/** The dead worker's lease of uid 64000, as deadWorkersLease writes it. */
const deadLease = () => ({ workerId: 'dead', pid: 999_999_999, startTime: '1', lease: 'gone' });
const startTime = async (): Promise<string> => (await processStartTime(process.pid)) ?? '';

const holderOf = (leaseDir: string): unknown =>
  (JSON.parse(readFileSync(join(leaseDir, String(UID)), 'utf8')) as { workerId: string }).workerId;

describe('a dead worker’s uid leases', () => {
  it('are left alone by its watchdog once another worker has taken one over', async () => {
    const leaseDir = deadWorkersLease();
    // The watchdog reads the dead worker's leases; a live worker takes the uid over meanwhile.
    const [seen] = await leasesOf(leaseDir, 'dead');
    const cleared: number[] = [];
    const taker = await pool(leaseDir, cleared);
    expect((await taker.uids.acquire()).uid).toBe(UID);
    expect(cleared).toEqual([UID]);

    let stopped = false;
    const ended = await endLease(leaseDir, UID, seen?.held ?? fail(), () => {
      stopped = true;
      return Promise.resolve();
    });
    expect(ended).toBe(false);
    expect(stopped).toBe(false);
    expect(holderOf(leaseDir)).toBe(taker.owner.workerId);
    // The uid is still the taker's alone.
    const third = await pool(leaseDir);
    await expect(third.uids.acquire()).rejects.toThrow(/uid pool exhausted/);
    expect(readdirSync(leaseDir)).toEqual([String(UID)]);
  });

  it('go to one worker at most when several take them over at once, its watchdog too', async () => {
    for (let round = 0; round < 20; round++) {
      const leaseDir = deadWorkersLease();
      const [seen] = await leasesOf(leaseDir, 'dead');
      const takers = await Promise.all(Array.from({ length: 4 }, () => pool(leaseDir)));
      let stops = 0;
      const [watchdog, ...acquired] = await Promise.allSettled([
        endLease(leaseDir, UID, seen?.held ?? fail(), () => {
          stops++;
          return Promise.resolve();
        }),
        ...takers.map((taker) => taker.uids.acquire()),
      ]);
      const winners = acquired.flatMap((outcome, index) =>
        outcome.status === 'fulfilled' ? [takers[index]?.owner.workerId] : [],
      );
      const watchdogEnded = watchdog.status === 'fulfilled' && watchdog.value;
      expect(stops).toBe(watchdogEnded ? 1 : 0);
      if (winners.length === 0) {
        // The watchdog ended it while every taker found it being ended: the uid is free now.
        expect(watchdogEnded).toBe(true);
        expect(readdirSync(leaseDir)).toEqual([]);
      } else {
        expect(winners).toHaveLength(1);
        expect(holderOf(leaseDir)).toBe(winners[0]);
        // No claim is left behind.
        expect(readdirSync(leaseDir)).toEqual([String(UID)]);
      }
    }
  });
});

describe('a dead worker’s run that was handed a directory', () => {
  const job = '/work/jobs/a';
  /** uid 64000's lease of a dead worker, whose run was handed `job`; and a pool beside it. */
  async function handedByDeadWorker(clearing: boolean) {
    const leaseDir = deadWorkersLease();
    recordHanded(leaseDir, UID, { lease: 'gone', dirs: [job] });
    const cleared: number[] = [];
    const { uids } = await pool(leaseDir, cleared, clearing);
    const reaching = (dirs: readonly string[]) => unclearedReaching(leaseDir, dirs, uids);
    return { leaseDir, cleared, reaching };
  }

  it('is cleared away, its lease ended, before anything it could reach counts as free', async () => {
    const { leaseDir, cleared, reaching } = await handedByDeadWorker(true);
    expect(await reaching(['/work/jobs/b', '/work'])).toBeNull();
    expect(cleared).toEqual([UID]);
    expect(readdirSync(leaseDir)).not.toContain(String(UID));
  });

  it('keeps what it could reach out of reach while its uid cannot be cleared', async () => {
    const { leaseDir, cleared, reaching } = await handedByDeadWorker(false);
    expect(await reaching(['/work/jobs/b'])).toBeNull();
    expect(await reaching([`${job}/src`])).toEqual({ uid: UID, dir: `${job}/src` });
    expect(await reaching(['/work'])).toEqual({ uid: UID, dir: '/work' });
    expect(cleared).toEqual([]);
    expect(holderOf(leaseDir)).toBe('dead');
  });

  it('waits for another taking it over already, and counts as cleared once that is done', async () => {
    const { leaseDir, cleared, reaching } = await handedByDeadWorker(true);
    // The dead worker's watchdog is ending the lease right now.
    const claim = join(leaseDir, `${UID}.ending-gone`);
    writeFileSync(claim, '');
    const reach = reaching([job]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    rmSync(join(leaseDir, String(UID)));
    rmSync(claim);
    expect(await reach).toBeNull();
    expect(cleared).toEqual([]);
  });

  it.each([
    ['names a process that is gone', JSON.stringify({ pid: 999_999_999, startTime: '1' })],
    ['is empty, of a worker from before claims named theirs', ''],
  ])(
    'takes over from a claimant that died while it ended the lease: its claim %s',
    async (_what, content) => {
      const { leaseDir, cleared, reaching } = await handedByDeadWorker(true);
      const claim = join(leaseDir, `${UID}.ending-gone`);
      writeFileSync(claim, content);
      const long = new Date(Date.now() - 60_000);
      utimesSync(claim, long, long);
      expect(await reaching([job])).toBeNull();
      expect(cleared).toEqual([UID]);
      // The dead worker's lease is over, and no claim to end it is left.
      const left = readdirSync(leaseDir);
      expect(left).not.toContain(String(UID));
      expect(left.filter((name) => name.includes('.ending-'))).toEqual([]);
    },
  );

  it('leaves a lease to a live claimant ending it, however long it takes', async () => {
    const leaseDir = deadWorkersLease();
    const claim = join(leaseDir, `${UID}.ending-gone`);
    writeFileSync(claim, JSON.stringify({ pid: process.pid, startTime: await startTime() }));
    const long = new Date(Date.now() - 60_000);
    utimesSync(claim, long, long);
    const cleared: number[] = [];
    const stopped = await endLease(leaseDir, UID, deadLease(), () =>
      Promise.resolve(void cleared.push(UID)),
    );
    expect(stopped).toBe(false);
    expect(cleared).toEqual([]);
    expect(holderOf(leaseDir)).toBe('dead');
  });

  it('is taken over just as well when the dead worker had set its uid aside', async () => {
    const leaseDir = deadWorkersLease();
    recordReach(leaseDir, UID, { lease: 'gone', dirs: [job] });
    const cleared: number[] = [];
    const { uids } = await pool(leaseDir, cleared);
    expect(await unclearedReaching(leaseDir, [job], uids)).toBeNull();
    expect(cleared).toEqual([UID]);
  });

  it('is not one of a live worker, nor of a lease that ended', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
    const live = await pool(leaseDir);
    const lease = await live.uids.acquire();
    lease.handing([job]);
    // uid 64001: a note left by a lease since ended, its file gone.
    recordHanded(leaseDir, UID + 1, { lease: 'ended', dirs: [job] });
    let takeOvers = 0;
    const reach = await unclearedReaching(leaseDir, [job], {
      takeOver: () => Promise.resolve(++takeOvers > 0),
      holds: () => false,
    });
    expect(reach).toBeNull();
    expect(takeOvers).toBe(0);
  });
});

describe('the uid leases of workers that share a host', () => {
  it('give a worker whichever uid the others left free, wherever it is in the pool', async () => {
    const count = 16;
    for (let free = 0; free < count; free++) {
      const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
      const other = await pool(leaseDir, [], true, count);
      const held = [];
      for (let at = 0; at < count; at++) held.push(await other.uids.acquire());
      await held[free]?.release();
      const mine = await pool(leaseDir, [], true, count);
      expect((await mine.uids.acquire()).uid).toBe(UID + free);
      rmSync(leaseDir, { recursive: true, force: true });
    }
  });
});

function fail(): never {
  throw new Error('the dead worker’s lease was not found');
}
