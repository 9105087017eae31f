import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  IsolationError,
  setUpIsolation,
  type IsolationSettings,
} from '../../src/isolation/index.js';
import { ownProcessLimit, pidRoomOfHost } from '../../src/isolation/run-limits.js';
import { becomeUid } from '../../src/isolation/tools.js';
import { UidPool } from '../../src/isolation/uid-pool.js';
import { plantSetAside } from '../support/set-aside.js';
import { processStartTime } from '../../src/executor/index.js';

const fixture = (name: string): string =>
  new URL(`../fixtures/bin/${name}`, import.meta.url).pathname;

function settings(overrides: Partial<IsolationSettings> = {}): IsolationSettings {
  return {
    mode: 'auto',
    namespaces: 'auto',
    runRoot: mkdtempSync(join(tmpdir(), 'claudebox-runroot-')),
    // A range no other test's worker uses: this private RUN_ROOT keeps leases of its own, and
    // taking a uid clears it (kill -9 as that uid), which would kill another test's run.
    uidBase: 66000,
    uidCount: 1000,
    concurrency: 1,
    maxProcesses: 2048,
    workDir: mkdtempSync(join(tmpdir(), 'claudebox-work-')),
    claudeBin: fixture('claude-success.mjs'),
    workerId: randomUUID(),
    path: process.env.PATH,
    sharedConfigDir: '/nonexistent/.claude',
    ...overrides,
  };
}

describe('setting up run isolation', () => {
  it('refuses to start under RUN_ISOLATION=required when the worker is not root, saying so', async () => {
    await expect(setUpIsolation(settings({ mode: 'required', uid: 1000 }))).rejects.toThrow(
      /run isolation is required \(RUN_ISOLATION=required\) but the worker runs as uid 1000, not root/,
    );
  });

  it('runs unisolated under auto when the worker is not root, with the reason', async () => {
    const isolation = await setUpIsolation(settings({ mode: 'auto', uid: 1000 }));
    expect(isolation.summary).toMatchObject({ mode: 'off', namespaces: [] });
    expect(isolation.summary.reason).toMatch(/uid 1000, not root/);
    expect(isolation.runRoot).toBeNull();
    const box = await isolation.open({ runId: randomUUID(), cwd: tmpdir() });
    expect(box.isolation).toMatchObject({ mode: 'off', uid: null });
    expect(box.configDir).toBe('/nonexistent/.claude');
  });

  it('says off and why under RUN_ISOLATION=off, without touching RUN_ROOT', async () => {
    const isolation = await setUpIsolation(
      settings({ mode: 'off', runRoot: '/nonexistent/claudebox' }),
    );
    expect(isolation.summary).toEqual({ mode: 'off', namespaces: [], reason: 'RUN_ISOLATION=off' });
  });

  it('names RUN_ROOT when it cannot be created', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'claudebox-')), 'a-file');
    writeFileSync(file, '');
    const error = await setUpIsolation(
      settings({ mode: 'required', runRoot: join(file, 'root') }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IsolationError);
    expect(String(error)).toMatch(/RUN_ROOT=.*a-file\/root: cannot create/);
  });

  it.each(['required', 'auto'] as const)(
    'refuses a uid pool smaller than CONCURRENCY under %s: a worker that could isolate its runs does not go on without',
    async (mode) => {
      await expect(setUpIsolation(settings({ mode, uidCount: 2, concurrency: 3 }))).rejects.toThrow(
        /RUN_UID_COUNT=2 is smaller than CONCURRENCY=3/,
      );
    },
  );

  it('names a CLI the run uid cannot reach', async () => {
    const hidden = mkdtempSync(join(tmpdir(), 'claudebox-hidden-')); // 0700, root's
    const bin = join(hidden, 'claude');
    writeFileSync(bin, '#!/bin/sh\n', { mode: 0o755 });
    await expect(
      setUpIsolation(settings({ mode: 'required', claudeBin: bin, namespaces: 'off' })),
    ).rejects.toThrow(/a run's uid \(66000\) cannot start .*claudebox-hidden-.*\/claude/);
  });

  it('isolates as root: RUN_ROOT closed to runs, uid mode, namespaces where bwrap works', async () => {
    const s = settings({ mode: 'required' });
    const isolation = await setUpIsolation(s);
    expect(isolation.summary.mode).toBe('uid');
    expect(isolation.runRoot).toBe(realpathSync(s.runRoot));
    // This machine has bwrap (the CI script installs it) and allows namespaces as root.
    expect(isolation.summary.namespaces).toEqual(['pid', 'ipc', 'mount']);
    expect(statSync(s.runRoot).mode & 0o777).toBe(0o711);
    expect(statSync(join(s.runRoot, 'leases')).mode & 0o777).toBe(0o700);
    expect(statSync(s.workDir).mode & 0o001).toBe(0o001);
  });

  it('sandboxes its runs where RUN_ROOT is given through a symlink', async () => {
    const real = mkdtempSync(join(tmpdir(), 'claudebox-runroot-'));
    const link = `${real}-link`;
    symlinkSync(real, link);
    try {
      const isolation = await setUpIsolation(settings({ mode: 'required', runRoot: link }));
      expect(isolation.summary.namespaces).toEqual(['pid', 'ipc', 'mount']);
      expect(isolation.runRoot).toBe(realpathSync(real));
      expect(isolation.warnings).toEqual([]);
    } finally {
      rmSync(link);
    }
  });

  it('warns at start where others may write in WORK_DIR, on the way down to other jobs’ directories', async () => {
    const open = settings({ mode: 'required' });
    chmodSync(open.workDir, 0o777);
    expect((await setUpIsolation(open)).warnings).toContainEqual(
      expect.stringMatching(
        /^WORK_DIR=.* is writable by others: a run without namespaces can make directories in it/,
      ),
    );
    const closed = settings({ mode: 'required' });
    expect((await setUpIsolation(closed)).warnings).not.toContainEqual(
      expect.stringContaining('WORK_DIR='),
    );
  });

  it('warns at start where its runs at RUN_MAX_PROCESSES could take every pid of the host', async () => {
    const tightest = Math.min(...pidRoomOfHost().map((room) => room.value));
    const concurrency = Math.ceil(tightest / 2048);
    const isolation = await setUpIsolation(
      settings({ mode: 'required', concurrency, maxProcesses: 2048 }),
    );
    expect(isolation.warnings).toContainEqual(
      expect.stringContaining(
        `CONCURRENCY=${concurrency} runs of RUN_MAX_PROCESSES=2048 processes each could take every pid`,
      ),
    );
    await isolation.close();
  });

  it('refuses, under auto too, a RUN_MAX_PROCESSES over the worker’s own limit of processes', async () => {
    const own = ownProcessLimit();
    expect(own, 'the test run needs a limit of processes (ulimit -u)').not.toBeNull();
    const over = (own ?? 0) + 1;
    await expect(setUpIsolation(settings({ mode: 'auto', maxProcesses: over }))).rejects.toThrow(
      `RUN_MAX_PROCESSES=${over} is over the worker's own limit of processes (${own}, its RLIMIT_NPROC)`,
    );
  });

  it("checks a run's uid with one no run holds: a run of another worker cannot make it start unisolated", async () => {
    const s = settings({ mode: 'auto' });
    // Another worker (alive: this process) runs a job as the pool's first uid, and that run
    // stops every other process of its uid, again and again.
    const leases = join(s.runRoot, 'leases');
    mkdirSync(leases, { recursive: true, mode: 0o700 });
    const startTime = (await processStartTime(process.pid)) ?? '';
    const record = { workerId: 'another', pid: process.pid, startTime, lease: randomUUID() };
    writeFileSync(join(leases, String(s.uidBase)), JSON.stringify(record));
    const stopper = spawn(
      'perl',
      ['-e', 'while (1) { kill "STOP", -1; select(undef, undef, undef, 0.005) }'],
      { uid: s.uidBase, gid: s.uidBase, stdio: 'ignore' },
    );
    try {
      const isolation = await setUpIsolation(s);
      expect(isolation.summary).toMatchObject({ mode: 'uid', namespaces: ['pid', 'ipc', 'mount'] });
      expect(isolation.warnings).toEqual([]);
      await isolation.close();
    } finally {
      stopper.kill('SIGKILL');
    }
  });

  it('sends kills as a run’s uid from a process that no other process of that uid can trace', async () => {
    const s = settings({ mode: 'required' });
    const isolation = await setUpIsolation(s);
    const shell = isolation.leases?.sender.shell ?? '';
    const uid = s.uidBase;
    // Reading a process's environ takes the same right as tracing it (ptrace's access check).
    const look = 'cat /proc/$$/environ > /dev/null 2>&1 && echo traceable || echo untraceable';
    const asUid = { uid, gid: uid, encoding: 'utf8' } as const;
    expect(spawnSync(shell, ['-c', look], asUid).stdout.trim()).toBe('untraceable');
    // The plain shell, as a check that the look can tell.
    expect(spawnSync('/bin/sh', ['-c', look], asUid).stdout.trim()).toBe('traceable');
  });

  it('writes a run’s private files where only its uid can read them, and removes them with the run', async () => {
    const s = settings({ mode: 'required' });
    const cwd = join(s.workDir, 'repo');
    mkdirSync(cwd);
    const isolation = await setUpIsolation(s);
    const box = await isolation.open({ runId: randomUUID(), cwd });
    const path = await box.writePrivateFile('profile-mcp.json', '{"mcpServers":{}}');
    await box.seal();

    expect(path.startsWith(`${box.configDir}/`)).toBe(true);
    expect(statSync(path)).toMatchObject({ uid: box.isolation.uid, gid: box.isolation.uid });
    expect(statSync(path).mode & 0o777).toBe(0o400);
    expect(statSync(box.configDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(path, 'utf8')).toBe('{"mcpServers":{}}');
    await box.close();
    expect(existsSync(path)).toBe(false);
  });

  it('keeps an unisolated run’s private files out of the config dir runs share, and removes them with the run', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'claudebox-shared-config-'));
    const isolation = await setUpIsolation(settings({ mode: 'off', sharedConfigDir: shared }));
    const box = await isolation.open({ runId: randomUUID(), cwd: tmpdir() });
    const path = await box.writePrivateFile('profile-settings.json', '{}');

    expect(path.startsWith(shared)).toBe(false);
    expect(statSync(path).mode & 0o777).toBe(0o400);
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    await box.close();
    expect(existsSync(path)).toBe(false);
    expect(existsSync(join(path, '..'))).toBe(false);
  });
});

describe('the uid pool', () => {
  const owner = async () => ({
    workerId: randomUUID(),
    pid: process.pid,
    startTime: (await processStartTime(process.pid)) ?? '',
  });

  it('hands each uid to one run at a time, clears none that was given back, and says when the pool is exhausted', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
    const cleared: number[] = [];
    const pool = new UidPool({
      leaseDir,
      base: 61000,
      count: 2,
      owner: await owner(),
      taken: new Set(),
      clear: (uid) => Promise.resolve(void cleared.push(uid)),
    });
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect([a.uid, b.uid]).toEqual([61000, 61001]);
    await expect(pool.acquire()).rejects.toThrow(
      /uid pool exhausted: all 2 uids from 61000 \(RUN_UID_BASE, RUN_UID_COUNT\) are in use/,
    );
    await a.release();
    expect((await pool.acquire()).uid).toBe(61000);
    // A uid given back was left clean by its run's box: only one taken over is cleared.
    expect(cleared).toEqual([]);
  });

  it('hands out its uids in turn: one given back goes to a run again only after the others', async () => {
    const pool = new UidPool({
      leaseDir: mkdtempSync(join(tmpdir(), 'claudebox-leases-')),
      base: 61100,
      count: 3,
      owner: await owner(),
      taken: new Set(),
      clear: () => Promise.resolve(),
    });
    const handed: number[] = [];
    for (let run = 0; run < 4; run++) {
      const lease = await pool.acquire();
      handed.push(lease.uid);
      await lease.release();
    }
    expect(handed).toEqual([61100, 61101, 61102, 61100]);
  });

  it('goes on in turn past a uid whose takeover is slow: the runs meanwhile do not bring it back', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
    // A dead worker's lease on the first uid: taking it over clears the uid, which takes a while.
    writeFileSync(
      join(leaseDir, '61200'),
      JSON.stringify({ workerId: 'dead', pid: 999_999_999, startTime: '1' }),
    );
    let cleared = (): void => undefined;
    let clearing = (): void => undefined;
    const clearingStarted = new Promise<void>((resolve) => (clearing = resolve));
    const pool = new UidPool({
      leaseDir,
      base: 61200,
      count: 5,
      owner: await owner(),
      taken: new Set(),
      clear: () => {
        clearing();
        return new Promise<void>((resolve) => (cleared = resolve));
      },
    });
    const slow = pool.acquire();
    await clearingStarted;
    const meanwhile: number[] = [];
    for (let run = 0; run < 3; run++) {
      const lease = await pool.acquire();
      meanwhile.push(lease.uid);
      await lease.release();
    }
    cleared();
    expect((await slow).uid).toBe(61200);
    expect(meanwhile).toEqual([61201, 61202, 61203]);
    expect((await pool.acquire()).uid).toBe(61204);
  });

  it('never hands out a uid another live worker holds, and takes over a dead worker’s', async () => {
    const leaseDir = mkdtempSync(join(tmpdir(), 'claudebox-leases-'));
    const common = { leaseDir, base: 62000, count: 1, taken: new Set<number>() };
    const other = new UidPool({ ...common, owner: await owner(), clear: () => Promise.resolve() });
    await other.acquire();
    const mine = new UidPool({ ...common, owner: await owner(), clear: () => Promise.resolve() });
    await expect(mine.acquire()).rejects.toThrow(/uid pool exhausted/);

    // A lease whose worker is gone (no such process) is stale.
    writeFileSync(
      join(leaseDir, '62000'),
      JSON.stringify({ workerId: 'dead', pid: 999_999_999, startTime: '1' }),
    );
    const cleared: number[] = [];
    const next = new UidPool({
      ...common,
      owner: await owner(),
      clear: (uid) => Promise.resolve(void cleared.push(uid)),
    });
    expect((await next.acquire()).uid).toBe(62000);
    expect(cleared).toEqual([62000]);
  });

  it('takes a dead worker’s uid over without removing its job’s working directory, under WORK_DIR=/tmp', async () => {
    const s = settings({
      mode: 'required',
      namespaces: 'off',
      workDir: '/tmp',
      uidBase: 67100,
      uidCount: 1,
    });
    const uid = s.uidBase;
    const isolation = await setUpIsolation(s);
    // What a worker that died mid-run left: its lease, the job's directory still the run's, and
    // a file the run left in another shared temporary directory.
    const jobDir = mkdtempSync(join('/tmp', 'claudebox-job-'));
    writeFileSync(join(jobDir, 'work.txt'), 'the job so far');
    const left = join('/var/tmp', `claudebox-left-${randomUUID()}`);
    writeFileSync(left, 'x');
    for (const path of [jobDir, join(jobDir, 'work.txt'), left]) chownSync(path, uid, uid);
    writeFileSync(
      join(s.runRoot, 'leases', String(uid)),
      JSON.stringify({ workerId: 'dead', pid: 999_999_999, startTime: '1' }),
    );
    const box = await isolation.open({ runId: randomUUID(), cwd: jobDir });
    expect(box.isolation.uid).toBe(uid);
    expect(readFileSync(join(jobDir, 'work.txt'), 'utf8')).toBe('the job so far');
    expect(existsSync(left)).toBe(false);
    await box.close();
    rmSync(jobDir, { recursive: true, force: true });
  });

  it('closes what a dead worker’s run was handed when it takes the uid over: the uid’s next run cannot enter it', async () => {
    const s = settings({ mode: 'required', namespaces: 'off', uidBase: 67200, uidCount: 1 });
    const uid = s.uidBase;
    const jobDir = join(s.workDir, 'job-a');
    mkdirSync(jobDir);
    mkdirSync(join(s.workDir, 'job-b'));
    writeFileSync(join(jobDir, 'secret.txt'), 'job a only');
    // A worker opens job a's box, then dies mid-run: its lease names a process long gone.
    const dying = await setUpIsolation(s);
    const box = await dying.open({ runId: randomUUID(), cwd: jobDir });
    expect(statSync(jobDir).uid).toBe(uid);
    const lease = join(s.runRoot, 'leases', String(uid));
    const held = JSON.parse(readFileSync(lease, 'utf8')) as Record<string, unknown>;
    writeFileSync(lease, JSON.stringify({ ...held, pid: 999_999_999 }));

    const next = await setUpIsolation({ ...s, workerId: randomUUID() });
    const other = await next.open({ runId: randomUUID(), cwd: join(s.workDir, 'job-b') });
    expect(other.isolation.uid).toBe(uid);
    expect(statSync(jobDir)).toMatchObject({ uid: 0, mode: 0o40700 });
    const read = spawnSync('setpriv', [...becomeUid(uid), 'cat', join(jobDir, 'secret.txt')], {
      encoding: 'utf8',
    });
    expect(read.stderr).toContain('Permission denied');
    // Job a's next attempt is handed its directory again, with what the first one wrote.
    await other.close();
    const again = await next.open({ runId: randomUUID(), cwd: jobDir });
    expect(statSync(jobDir).uid).toBe(uid);
    expect(readFileSync(join(jobDir, 'secret.txt'), 'utf8')).toBe('job a only');
    await again.close();
    await Promise.all([box.close().catch(() => undefined), dying.close(), next.close()]);
  });

  it('hands no directory to a run while another run that was handed it goes on, nor one inside it', async () => {
    const s = settings({ mode: 'required', namespaces: 'off', uidBase: 67300, uidCount: 2 });
    const shared = join(s.workDir, 'shared');
    mkdirSync(join(shared, 'inner'), { recursive: true });
    const isolation = await setUpIsolation(s);
    const first = await isolation.open({ runId: randomUUID(), cwd: shared });
    const refused = `is in use by a run going on now (uid ${first.isolation.uid}): two jobs cannot work in one directory at the same time`;
    await expect(isolation.open({ runId: randomUUID(), cwd: shared })).rejects.toThrow(refused);
    await expect(
      isolation.open({ runId: randomUUID(), cwd: join(shared, 'inner') }),
    ).rejects.toThrow(refused);
    // The refused runs took nothing: the first run still owns its directory.
    expect(statSync(shared).uid).toBe(first.isolation.uid);

    await first.close();
    const next = await isolation.open({ runId: randomUUID(), cwd: join(shared, 'inner') });
    expect(statSync(join(shared, 'inner')).uid).toBe(next.isolation.uid);
    await next.close();
    await isolation.close();
  });

  it('skips uids that are accounts of the system', async () => {
    const pool = new UidPool({
      leaseDir: mkdtempSync(join(tmpdir(), 'claudebox-leases-')),
      base: 63000,
      count: 2,
      owner: await owner(),
      taken: new Set([63000]),
      clear: () => Promise.resolve(),
    });
    expect((await pool.acquire()).uid).toBe(63001);
  });

  it('keeps a job’s scratch directory that a set-aside run could still reach, and removes it once that uid is cleared', async () => {
    const s = settings({ mode: 'required', uidBase: 67_400, uidCount: 4 });
    const isolation = await setUpIsolation(s);
    const jobKey = randomUUID();
    const scratch = isolation.scratchDir(jobKey) ?? '';
    mkdirSync(join(scratch, 'src'), { recursive: true });
    // A uid set aside under a live lease, its run's reach recorded beside it.
    const leases = join(s.runRoot, 'leases');
    const setAside = plantSetAside(67_401, [scratch], leases);
    await expect(isolation.removeScratch(jobKey)).rejects.toThrow(
      `kept ${scratch}: a process of an earlier run, whose uid 67401 could not be cleared yet`,
    );
    expect(existsSync(join(scratch, 'src'))).toBe(true);
    // Cleared: its lease ended, and the record with it.
    setAside.clear();
    await isolation.removeScratch(jobKey);
    expect(existsSync(scratch)).toBe(false);
    expect(existsSync(join(leases, '67401.reach'))).toBe(false);
    await isolation.close();
  });
});
