import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../../src/executor/index.js';
import { openUidBox } from '../../src/isolation/box.js';
import { IsolationError } from '../../src/isolation/errors.js';
import { uidConfinement } from '../../src/isolation/uid-confinement.js';
import { clearUid, SENDER_SHELL, stopUid } from '../../src/isolation/tools.js';
import { recordHanded } from '../../src/isolation/handed-dirs.js';
import { setAsideReaching } from '../../src/isolation/uncleared-reach.js';
import { UidPool } from '../../src/isolation/uid-pool.js';
import { eventually } from '../support/processes.js';

/** A uid no other test's runs use. */
const UID = 63_521;
/** A sender of kill(-1) as the uid that never gets to send it, as if a process of the uid stopped it. */
const NEVER_SENDS = '/bin/false';
const SETPRIV = '/usr/bin/setpriv';

const roots: string[] = [];
afterAll(() => roots.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A box of UID's in directories of its own, and how often its lease was given back or set aside. */
function uidBoxSpec() {
  const root = mkdtempSync(join(tmpdir(), 'claudebox-uid-clearing-'));
  roots.push(root);
  const [runRoot, workDir] = [join(root, 'run'), join(root, 'work')];
  const cwd = join(workDir, 'job');
  const leaseDir = join(runRoot, 'leases');
  for (const dir of [join(runRoot, 'homes'), leaseDir, cwd]) mkdirSync(dir, { recursive: true });
  const given = { released: 0, setAside: 0 };
  const lease = {
    uid: UID,
    handing: () => undefined,
    leaving: () => undefined,
    release: () => {
      given.released++;
      return Promise.resolve();
    },
    // As a pool's lease: setting it aside again changes nothing.
    setAside: () => {
      given.setAside = 1;
    },
  };
  const spec = {
    lease,
    setpriv: SETPRIV,
    limits: [],
    runRoot,
    workRoot: workDir,
    workDir,
    runId: randomUUID(),
    cwd,
    addDirs: [],
    mayTake: () => true,
    sandbox: null,
    namespaces: [],
  };
  return { spec: { ...spec, leaseDir }, given };
}

/** A pool of `count` uids from UID in `leaseDir`, owned by this process. */
async function poolOf(leaseDir: string, count: number) {
  const startTime = (await processStartTime(process.pid)) ?? '';
  return {
    leaseDir,
    base: UID,
    count,
    owner: { workerId: randomUUID(), pid: process.pid, startTime },
    taken: new Set<number>(),
  };
}

describe('the uid of a run that ended', () => {
  it('counts as clear once a kill sent as it got through, with nothing of it left', async () => {
    const confinement = uidConfinement({ uid: UID, setpriv: SETPRIV, sandbox: null });
    await confinement.sweep(undefined, 0);
    expect(confinement.cleared).toBe(true);
  });

  it('does not count as clear when no kill sent as it got through', async () => {
    const confinement = uidConfinement({
      uid: UID,
      setpriv: SETPRIV,
      sandbox: null,
      senderShell: NEVER_SENDS,
    });
    await confinement.sweep(undefined, 0);
    expect(confinement.cleared).toBe(false);
  });

  it('does not count as clear while /proc still shows a process of it after every kill got through', async () => {
    // As a process in an uninterruptible wait (a hung file system) would stay through SIGKILL:
    // a pid beyond pid_max, which nothing can have and no kill reaches.
    const stuck = { pid: 4_194_304, startTime: '1' };
    const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };
    const swept = await stopUid(UID, sender, 0, () => Promise.resolve([stuck]));
    expect(swept).toEqual({ found: 1, cleared: false });
  });

  it('does not count as clear while a process of it that the first look missed is still there after the kill', async () => {
    const stuck = { pid: 4_194_304, startTime: '1' };
    const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };
    // Forked after the first look, and in an uninterruptible wait by the time the kill came.
    let looks = 0;
    const find = () => Promise.resolve(looks++ === 0 ? [] : [stuck]);
    const swept = await stopUid(UID, sender, 0, find);
    expect(swept).toEqual({ found: 0, cleared: false });
  });

  it('cannot be cleared for reuse either: clearing it fails, naming the uid', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-uid-clearing-leases-'));
    roots.push(leaseDir);
    const sender = { setpriv: SETPRIV, shell: NEVER_SENDS };
    const clearing = clearUid(UID, { sender, leaseDir, lease: randomUUID() });
    await expect(clearing).rejects.toThrow(IsolationError);
    await expect(clearing).rejects.toThrow(`uid ${UID}`);
  });

  it("once cleared, has its runs' homes removed, and no other uid's", async () => {
    const { spec } = uidBoxSpec();
    const homes = join(spec.runRoot, 'homes');
    const names = [`${UID}-a`, `${UID}-b`, `${UID + 1}-c`];
    for (const name of names) {
      mkdirSync(join(homes, name, '.claude'), { recursive: true });
      writeFileSync(join(homes, name, '.claude', 'settings.json'), '{}');
    }
    const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };
    await clearUid(UID, { sender, leaseDir: spec.leaseDir, lease: randomUUID(), homes });
    expect(readdirSync(homes)).toEqual([`${UID + 1}-c`]);
  });

  it('stays out of the pool then: closing the box fails, naming the uid, and keeps its lease', async () => {
    const { spec, given } = uidBoxSpec();
    const box = await openUidBox({ ...spec, senderShell: NEVER_SENDS });
    const home = box.env.HOME ?? '';
    const closing = box.close();
    await expect(closing).rejects.toThrow(IsolationError);
    await expect(closing).rejects.toThrow(`uid ${UID}`);
    expect(given).toEqual({ released: 0, setAside: 1 });
    expect(box.runGone).toBe(false);
    // What a process of the run could still change is not removed as root; the uid's next run,
    // once the pool gives the uid out again, clears the home away.
    expect(existsSync(home)).toBe(true);
    await openUidBox({ ...spec, runId: randomUUID() });
    expect(existsSync(home)).toBe(false);
  });

  it('goes to no run while a home its earlier run left cannot be removed', async () => {
    const { spec, given } = uidBoxSpec();
    // A mount inside the old home: neither an rmdir nor rm crosses it.
    const mount = join(spec.runRoot, 'homes', `${UID}-earlier`, 'mounted');
    mkdirSync(mount, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'none', mount]);
    try {
      await expect(openUidBox(spec)).rejects.toThrow(`${UID}-earlier`);
      expect(given).toEqual({ released: 0, setAside: 1 });
    } finally {
      execFileSync('umount', [mount]);
    }
  });

  it('comes back to the pool once clearing it again works, tried later and later until then', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-uid-clearing-leases-'));
    roots.push(leaseDir);
    const tries: number[] = [];
    const leaseFile = join(leaseDir, String(UID));
    // What the second try finds: the first, which failed, gave nothing back.
    let leaseFileThen = false;
    let acquiredThen: Promise<unknown> = Promise.resolve(null);
    const pool = new UidPool({
      ...(await poolOf(leaseDir, 1)),
      // As if a process of the uid outlived two more rounds of kills, then was gone.
      clear: () => {
        tries.push(performance.now());
        if (tries.length === 2) {
          leaseFileThen = existsSync(leaseFile);
          // Settled here: a rejection left for later would count as unhandled.
          acquiredThen = pool.acquire().then(
            (lease) => lease,
            (error: unknown) => error,
          );
        }
        return tries.length <= 2 ? Promise.reject(new Error('still there')) : Promise.resolve();
      },
      retryAfterMs: 100,
    });
    const lease = await pool.acquire();
    const setAsideAt = performance.now();
    lease.setAside();

    await expect(pool.acquire()).rejects.toThrow('uid pool exhausted');
    expect(await eventually(() => tries.length === 3, 5000)).toBe(true);
    expect(leaseFileThen).toBe(true);
    const refused = await acquiredThen;
    expect(refused).toBeInstanceOf(IsolationError);
    expect((refused as Error).message).toContain('uid pool exhausted');
    // Timers may fire a millisecond early by the clock read here: the bounds allow for it.
    const [first = NaN, second = NaN, third = NaN] = tries;
    expect(first - setAsideAt).toBeGreaterThanOrEqual(95);
    expect(second - first).toBeGreaterThanOrEqual(190);
    expect(third - second).toBeGreaterThanOrEqual(380);
    expect(await eventually(() => readdirSync(leaseDir).length === 0, 5000)).toBe(true);
    expect((await pool.acquire()).uid).toBe(UID);
  });

  it('takes back, once cleared, what its run was handed and still owns: never what went on to another run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'claudebox-uid-clearing-handed-'));
    roots.push(root);
    const leaseDir = join(root, 'leases');
    const mine = join(root, 'mine');
    const passedOn = join(root, 'passed-on');
    const elsewhere = join(root, 'elsewhere');
    for (const dir of [leaseDir, mine, passedOn, elsewhere]) mkdirSync(dir);
    chownSync(mine, UID, UID);
    chownSync(passedOn, UID + 1, UID + 1);
    // What the run put in place of a directory it was handed: never followed.
    chownSync(elsewhere, UID, UID);
    const swapped = join(root, 'swapped');
    symlinkSync(elsewhere, swapped);
    const lease = randomUUID();
    const dirs = [mine, passedOn, swapped, join(root, 'removed-by-the-run')];
    recordHanded(leaseDir, UID, { lease, dirs });
    const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };

    // A clearing of an earlier lease leaves the record of the run the uid has now alone.
    await clearUid(UID, { sender, leaseDir, lease: randomUUID() });
    expect(statSync(mine).uid).toBe(UID);
    await clearUid(UID, { sender, leaseDir, lease });
    expect(statSync(mine)).toMatchObject({ uid: 0, mode: 0o40700 });
    expect(statSync(passedOn).uid).toBe(UID + 1);
    expect(statSync(elsewhere).uid).toBe(UID);
    expect(existsSync(join(leaseDir, `${UID}.handed`))).toBe(false);
  });

  /** A box whose close sets its uid aside, and a pool that clears it at the second try. */
  async function setAsideBox() {
    const { spec } = uidBoxSpec();
    const { leaseDir } = spec;
    const sender = { setpriv: SETPRIV, shell: SENDER_SHELL };
    const clears = { count: 0 };
    const pool = new UidPool({
      ...(await poolOf(leaseDir, 1)),
      // The run's processes outlive the first clearing, and are gone by the second.
      clear: (uid, lease) =>
        ++clears.count === 1
          ? Promise.reject(new Error('still there'))
          : clearUid(uid, { sender, leaseDir, lease, homes: join(spec.runRoot, 'homes') }),
      retryAfterMs: 100,
    });
    const box = await openUidBox({
      ...spec,
      lease: await pool.acquire(),
      senderShell: NEVER_SENDS,
    });
    const home = join(spec.runRoot, 'homes', `${UID}-${spec.runId}`);
    writeFileSync(join(box.configDir, 'settings.json'), '{}');
    await expect(box.close()).rejects.toThrow(IsolationError);
    expect(existsSync(join(home, '.claude', 'settings.json'))).toBe(true);
    return { spec, box, home, clears };
  }

  it("removes its run's home once it is cleared, never before", async () => {
    const { spec, home, clears } = await setAsideBox();
    expect(await eventually(() => !existsSync(home), 5000)).toBe(true);
    expect(clears.count).toBe(2);
    expect(await eventually(() => readdirSync(spec.leaseDir).length === 0, 5000)).toBe(true);
  });

  it("removes the scratch directory its run's job left once it is cleared, never before", async () => {
    const { spec, box, home, clears } = await setAsideBox();
    writeFileSync(join(spec.cwd, 'notes.txt'), 'what the run wrote');
    box.removeOnceCleared(spec.cwd);
    expect(existsSync(join(spec.cwd, 'notes.txt'))).toBe(true);

    expect(await eventually(() => !existsSync(spec.cwd), 5000)).toBe(true);
    expect(existsSync(home)).toBe(false);
    expect(clears.count).toBe(2);
    expect(await eventually(() => readdirSync(spec.leaseDir).length === 0, 5000)).toBe(true);
  });

  it('keeps what its run could reach from any other run until it is cleared', async () => {
    const { spec } = uidBoxSpec();
    const { leaseDir } = spec;
    let clears = 0;
    const pool = new UidPool({
      ...(await poolOf(leaseDir, 2)),
      // The run's processes outlive the first clearing, and are gone by the second.
      clear: () => (++clears === 1 ? Promise.reject(new Error('still there')) : Promise.resolve()),
      retryAfterMs: 100,
    });
    const reaching = (dir: string) => setAsideReaching(leaseDir, [dir])?.uid ?? null;
    const first = await openUidBox({
      ...spec,
      lease: await pool.acquire(),
      senderShell: NEVER_SENDS,
      unclearedReaching: (dirs) => Promise.resolve(setAsideReaching(leaseDir, dirs)),
    });
    await expect(first.close()).rejects.toThrow(IsolationError);
    expect(reaching(spec.cwd)).toBe(UID);
    expect(reaching(join(spec.cwd, 'src'))).toBe(UID);
    expect(reaching(spec.runRoot)).toBeNull();

    const second = {
      ...spec,
      runId: randomUUID(),
      unclearedReaching: (dirs: readonly string[]) =>
        Promise.resolve(setAsideReaching(leaseDir, dirs)),
    };
    await expect(openUidBox({ ...second, lease: await pool.acquire() })).rejects.toThrow(
      `${spec.cwd} is within reach of an earlier run whose uid ${UID} could not be cleared yet`,
    );
    expect(await eventually(() => reaching(spec.cwd) === null, 5000)).toBe(true);
    const box = await openUidBox({ ...second, lease: await pool.acquire() });
    expect(box.isolation.uid).toBe(UID);
  });
});
