import { createHash, randomUUID } from 'node:crypto';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  readFile,
  realpath,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { RunIsolation } from '../contract/index.js';
import { LAUNCHER_INPUT_FD, processStartTime, searchPath } from '../executor/index.js';
import { openUidBox, sharedBox, type RunBox, type SandboxFor } from './box.js';
import { IsolationError } from './errors.js';
import { becomeUid, clearUid, SENDER_SHELL, type Sender } from './tools.js';
import { UidPool } from './uid-pool.js';
import { runningRuns, unclearedReaching, type UnclearedReach } from './uncleared-reach.js';
import { scratchDirs, type ScratchDirs } from './scratch-dirs.js';
import { setUpRunLimits } from './run-limits.js';
import { makeSandboxTemp, SANDBOX_TEMP, sandboxTempOf } from './homes.js';
import { launchAsUid, type Sandbox } from './uid-confinement.js';
import { KEYRING_FILTER } from './seccomp.js';
import { isInside } from '../common/paths.js';
import { errorMessage } from '../common/errors.js';
import { diskBytes } from '../common/disk-bytes.js';

export type IsolationMode = 'auto' | 'required' | 'off';

export interface IsolationSettings {
  /** RUN_ISOLATION */
  readonly mode: IsolationMode;
  /** RUN_NAMESPACES */
  readonly namespaces: 'auto' | 'off';
  /** RUN_ROOT */
  readonly runRoot: string;
  /** RUN_UID_BASE, RUN_UID_COUNT */
  readonly uidBase: number;
  readonly uidCount: number;
  readonly concurrency: number;
  /** RUN_MAX_PROCESSES: a run's processes and threads at most; 0: the worker's own limit. */
  readonly maxProcesses: number;
  /** WORK_DIR, as a real path. */
  readonly workDir: string;
  readonly claudeBin: string;
  readonly workerId: string;
  /** PATH, to find setpriv and bwrap. */
  readonly path: string | undefined;
  /** The Claude config dir runs share when they are not isolated. */
  readonly sharedConfigDir: string;
  /** process.getuid(), injectable for tests. */
  readonly uid?: number;
}

/** What the runs of a host take of RUN_ROOT's disk, as `du` would count it. */
export interface RunDiskUse {
  readonly scratchBytes: number;
  readonly homesBytes: number;
}

/** Where a worker's uid leases are, and what clearUid needs to clear their uids. */
export interface LeaseClearing {
  readonly dir: string;
  readonly sender: Sender;
  readonly workDir: string;
  /** RUN_ROOT/homes, where the runs' homes are. */
  readonly homes: string;
}

/** What a worker's runs get, decided once at start. */
export interface Isolation {
  /** How every run of this worker is isolated (the uid aside), for /readyz and the log. */
  readonly summary: Omit<RunIsolation, 'uid'>;
  /** For the watchdog: what it needs to clear the uids of a worker that died (see clearUid). */
  readonly leases: LeaseClearing | null;
  /**
   * RUN_ROOT as a real path where runs are isolated (null where not): the runs' homes and scratch
   * directories, the uid leases, the kill's shell. No job may name a directory in it or holding
   * it: a run is handed what is root's in its directories.
   */
  readonly runRoot: string | null;
  /** Where a job that names no working directory works; null: in WORK_DIR, shared. */
  scratchDir(jobKey: string): string | null;
  /** A job's scratch directory and what notes it beside it; none where there is none. */
  scratchPaths(jobKey: string): string[];
  /** Makes a job's scratch directory, before its attempt's run (see ScratchDirs). */
  makeScratch(jobKey: string): void;
  /** Removes a job's scratch directory once the job is over. */
  removeScratch(jobKey: string): Promise<void>;
  /** Removes the scratch directories of a queue's jobs that are over or gone: how many. */
  sweepScratch: ScratchDirs['sweepScratch'];
  /**
   * An earlier run not cleared away that could still reach one of `dirs` (its uid, and that
   * directory), or null: nothing there is to be replaced or removed as root meanwhile (a job's
   * checkout, say). A set-aside uid's run, or a dead worker's that could not be cleared away now:
   * where one of those can, it is first (see UidPool.takeOver).
   */
  unclearedReaching(dirs: readonly string[]): Promise<UnclearedReach | null>;
  /**
   * Makes a run's box around its working directory and the job's other directories (addDirs,
   * inside WORK_DIR); an IsolationError says why it cannot (the pool exhausted, say).
   */
  open(run: {
    readonly runId: string;
    readonly cwd: string;
    readonly addDirs?: readonly string[];
  }): Promise<RunBox>;
  /** What makes run isolation weaker here than it could be, for the worker to say at start. */
  readonly warnings: readonly string[];
  /** Bytes on disk in RUN_ROOT's scratch directories and runs' homes (0 where there are none). */
  runDiskUse(): Promise<RunDiskUse>;
  /** Stops what goes on in the background (clearing set-aside uids): before the watchdog stops. */
  close(): Promise<void>;
}

/**
 * Sets up run isolation as RUN_ISOLATION asks: `off` never; `auto` where it can (and says
 * loudly why not); `required` or an IsolationError naming what is missing.
 */
export async function setUpIsolation(settings: IsolationSettings): Promise<Isolation> {
  if (settings.mode === 'off') return unisolated(settings, 'RUN_ISOLATION=off');
  try {
    return await isolated(settings);
  } catch (error) {
    if (!(error instanceof IsolationError) || settings.mode === 'required') {
      if (error instanceof IsolationError) {
        throw new IsolationError(
          `run isolation is required (RUN_ISOLATION=required) but ${error.message}`,
        );
      }
      throw error;
    }
    return unisolated(settings, error.message);
  }
}

function unisolated(settings: IsolationSettings, reason: string): Isolation {
  return {
    summary: { mode: 'off', namespaces: [], reason },
    runRoot: null,
    leases: null,
    scratchDir: () => null,
    scratchPaths: () => [],
    makeScratch: () => undefined,
    removeScratch: () => Promise.resolve(),
    sweepScratch: () => Promise.resolve(0),
    unclearedReaching: () => Promise.resolve(null),
    open: () => Promise.resolve(sharedBox(settings.sharedConfigDir, reason)),
    runDiskUse: () => Promise.resolve({ scratchBytes: 0, homesBytes: 0 }),
    warnings: [],
    close: () => Promise.resolve(),
  };
}

/** What starts a run's processes as its uid, with its limits: the checks at start use it too. */
interface Launcher {
  readonly setpriv: string;
  readonly limits: readonly string[];
}

/**
 * The launcher of runs from the tools on PATH, and what its limits warn of; an IsolationError
 * names a tool that is not there.
 */
async function findLauncher(
  settings: IsolationSettings,
): Promise<Launcher & { readonly warnings: readonly string[] }> {
  const setpriv = await searchPath('setpriv', settings.path);
  if (setpriv === null) {
    throw new IsolationError('setpriv is not on PATH (install util-linux)');
  }
  const limits = setUpRunLimits(settings.maxProcesses, settings.concurrency);
  return { setpriv, limits: limits.argv, warnings: limits.warnings };
}

/** Throws, saying why, where the worker's uid or settings cannot give each run a uid. */
function checkUidsCanBeGiven(settings: IsolationSettings): void {
  const uid = settings.uid ?? process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new IsolationError(
      `the worker runs as uid ${uid}, not root: it needs root to switch each run to a uid of its own`,
    );
  }
  // Not an IsolationError: a worker that could isolate its runs does not go on unisolated over
  // a setting it was given wrong.
  if (settings.uidCount < settings.concurrency) {
    throw new Error(
      `RUN_UID_COUNT=${settings.uidCount} is smaller than CONCURRENCY=${settings.concurrency}: every concurrent run needs a uid of its own`,
    );
  }
}

async function isolated(given: IsolationSettings): Promise<Isolation> {
  checkUidsCanBeGiven(given);
  const { runRoot, ...dirs } = await makeRunRoot(given.runRoot);
  const settings = { ...given, runRoot };
  const { warnings: limitWarnings, ...launcher } = await findLauncher(settings);
  const { setpriv } = launcher;
  const workDirWarnings = await openWorkDir(settings.workDir);
  const senderShell = await installSenderShell(dirs.bin);
  const sender: Sender = { setpriv, shell: senderShell };
  const taken = await accountUids();
  const startTime = (await processStartTime(process.pid)) ?? '';
  const clearing = { sender, workDir: settings.workDir, homes: dirs.homes };
  const pool = new UidPool({
    leaseDir: dirs.leases,
    base: settings.uidBase,
    count: settings.uidCount,
    owner: { workerId: settings.workerId, pid: process.pid, startTime },
    taken,
    clear: (poolUid, lease) => clearUid(poolUid, { ...clearing, leaseDir: dirs.leases, lease }),
  });
  // The checks start processes as a run's uid: as one leased to them, which no run of any
  // worker on this host has, so that no run can stop them (and have this worker start without
  // isolation or namespaces).
  const sandboxFor = await underLease(pool, async (uid) => {
    await probe(launcher, uid, null, settings);
    await checkSenderShell(senderShell, setpriv, uid);
    return namespacesFor(settings, launcher, dirs, uid);
  });
  const { uidBase, uidCount } = settings;
  const mayTake = (owner: number): boolean =>
    owner === 0 || (owner >= uidBase && owner < uidBase + uidCount);
  const reaching = (wanted: readonly string[]) => unclearedReaching(dirs.leases, wanted, pool);
  return {
    summary: { mode: 'uid', namespaces: sandboxFor.namespaces },
    runRoot,
    warnings: [...sandboxFor.warnings, ...limitWarnings, ...workDirWarnings],
    leases: { dir: dirs.leases, ...clearing },
    ...scratchDirs(dirs.scratch, reaching),
    unclearedReaching: reaching,
    open: async ({ runId, cwd, addDirs = [] }) => {
      const lease = await pool.acquire();
      return openUidBox({
        addDirs,
        lease,
        ...launcher,
        runRoot,
        workRoot: cwd.startsWith(dirs.scratch) ? dirs.scratch : settings.workDir,
        workDir: settings.workDir,
        runId,
        cwd,
        mayTake,
        sandbox: sandboxFor.args,
        namespaces: sandboxFor.namespaces,
        senderShell,
        unclearedReaching: reaching,
        runningRuns: (ownUid) => runningRuns(dirs.leases, ownUid),
      });
    },
    runDiskUse: () => runDiskUse(dirs),
    close: () => pool.close(),
  };
}

/**
 * Gives WORK_DIR the search bit for others, which the runs need to reach their working
 * directories; warns where others may write in it.
 */
async function openWorkDir(workDir: string): Promise<string[]> {
  const work = await lstat(workDir);
  if ((work.mode & 0o001) === 0) await chmod(workDir, (work.mode & 0o7777) | 0o001);
  if ((work.mode & 0o002) === 0) return [];
  return [
    `WORK_DIR=${workDir} is writable by others: a run without namespaces can make directories in it, on the way down to other jobs' working directories (make it writable by root alone)`,
  ];
}

async function runDiskUse({ scratch, homes }: RunRootDirs): Promise<RunDiskUse> {
  return {
    scratchBytes: await diskBytes(scratch, new Set()),
    homesBytes: await diskBytes(homes, new Set()),
  };
}

/** `step` with the uid of a lease of its own, given back however it ends. */
async function underLease<T>(pool: UidPool, step: (uid: number) => Promise<T>): Promise<T> {
  // Not an IsolationError: a worker that finds every uid in use runs nothing unisolated.
  const lease = await pool.acquire().catch((error: unknown) => {
    throw new Error(`cannot check run isolation: ${errorMessage(error)}`);
  });
  try {
    return await step(lease.uid);
  } finally {
    await lease.release();
  }
}

interface RunRootDirs {
  readonly bin: string;
  readonly leases: string;
  readonly homes: string;
  readonly scratch: string;
  readonly sessions: string;
}

/**
 * RUN_ROOT and its parts, root's own: runs may pass through (0711) to their home or scratch
 * directory, whose names they cannot list, and never into the leases or the kept sessions.
 */
async function makeRunRoot(given: string): Promise<RunRootDirs & { readonly runRoot: string }> {
  const made = async (dir: string, mode: number): Promise<void> => {
    try {
      await mkdir(dir, { recursive: true, mode });
      await chown(dir, 0, 0);
      await chmod(dir, mode);
    } catch (error) {
      throw new IsolationError(
        `RUN_ROOT=${given}: cannot create ${dir}: ${(error as Error).message}`,
      );
    }
  };
  await made(given, 0o711);
  // As a real path: bwrap mounts on a path as the kernel resolves it, and fails on a symlink.
  const runRoot = await realpath(given);
  const dirs = {
    bin: join(runRoot, 'bin'),
    leases: join(runRoot, 'leases'),
    homes: join(runRoot, 'homes'),
    scratch: join(runRoot, 'scratch'),
    sessions: join(runRoot, 'sessions'),
  };
  const modes: [string, number][] = [
    [dirs.bin, 0o711],
    [dirs.leases, 0o700],
    [dirs.homes, 0o711],
    [dirs.scratch, 0o711],
    [dirs.sessions, 0o700],
  ];
  for (const [dir, mode] of modes) await made(dir, mode);
  return { runRoot, ...dirs };
}

/**
 * The shell kills as a run's uid are sent from (see signalUid): a copy of SENDER_SHELL that the
 * uid may execute but not read. The kernel makes a process it cannot read the program of
 * undumpable, so no process of the run's uid can trace the sender and keep it from sending.
 */
async function installSenderShell(binDir: string): Promise<string> {
  // Named after its content: workers sharing RUN_ROOT from different images each run their own
  // shell. Each writes it at start under a name of its own, then renames it whole.
  let shell = join(binDir, 'signal-sh');
  try {
    const program = await readFile(SENDER_SHELL);
    shell = `${shell}-${createHash('sha256').update(program).digest('hex').slice(0, 16)}`;
    const staged = `${shell}.${randomUUID()}`;
    await writeFile(staged, program, { flag: 'wx', mode: 0o700 });
    await chmod(staged, 0o111);
    await rename(staged, shell);
  } catch (error) {
    throw new IsolationError(`cannot install ${shell}: ${(error as Error).message}`);
  }
  return shell;
}

/** Throws where a run's uid cannot run the sender shell: such a uid could never be cleared. */
async function checkSenderShell(shell: string, setpriv: string, uid: number): Promise<void> {
  const tried = await execa(setpriv, [...becomeUid(uid), shell, '-c', 'exit 0'], {
    reject: false,
    timeout: 10_000,
  });
  if (tried.exitCode !== 0) {
    throw new IsolationError(
      `a run's uid (${uid}) cannot run ${shell}${tried.code ? ` (${tried.code})` : ''}: is RUN_ROOT on a file system mounted noexec?`,
    );
  }
}

interface Sandboxing {
  readonly namespaces: RunIsolation['namespaces'];
  readonly args: SandboxFor | null;
  /** What makes the sandbox weaker than it could be here. */
  readonly warnings: readonly string[];
}

/**
 * bwrap's options for a run: everything read-only but its home and the job's directories.
 * `asRunUid`: bwrap runs as the run's uid and makes the namespaces in a user namespace of its
 * own, in which the run can make no other, and bwrap is never root; false where the host
 * refuses that to a uid.
 */
function sandboxFor(
  bwrap: string,
  settings: IsolationSettings,
  realBin: string,
  asRunUid: boolean,
): SandboxFor {
  // Other runs' homes and other jobs' working directories are not even there: an empty tmpfs
  // on RUN_ROOT and WORK_DIR, with just the way down to this run's two directories.
  // Shorter first: a tmpfs on a parent would cover one mounted on its child before it. A
  // directory that holds the CLI itself (WORK_DIR left at the worker's own directory, say)
  // stays in sight, read-only, and its runs' directories behind their permissions.
  const hidden = [settings.runRoot, settings.workDir]
    .filter((dir) => !isInside(realBin, dir) && !isInside(settings.claudeBin, dir))
    .sort((a, b) => a.length - b.length);
  const temp = SANDBOX_TEMP.map(([dir]) => dir);
  const emptied = [...temp, ...hidden];
  const wayDown = (target: string): string[] => {
    const top = emptied
      .filter((dir) => target.startsWith(`${dir}/`))
      .sort((a, b) => a.length - b.length)
      .at(-1);
    if (top === undefined) return [];
    const steps: string[] = [];
    for (let dir = dirname(target); dir !== top && dir.length > top.length; dir = dirname(dir)) {
      steps.unshift('--perms', '0711', '--dir', dir);
    }
    return steps;
  };
  // The CLI, where it lives below a directory the sandbox empties (a checkout in /tmp, say),
  // is put back, read-only: its own directory and, for a symlink, its target's.
  const cliDirs = [...new Set([dirname(settings.claudeBin), dirname(realBin)])].filter((dir) =>
    emptied.some((top) => dir.startsWith(`${top}/`)),
  );
  // The CLI's directory comes back whole, with a hidden directory it holds (the CLI in a checkout
  // that also holds WORK_DIR, say): that one is emptied again, on top.
  const hiddenAgain = hidden.filter((dir) => cliDirs.some((cliDir) => isInside(dir, cliDir)));
  const cli = [
    ...cliDirs.flatMap((dir) => [...wayDown(dir), '--ro-bind', dir, dir]),
    ...hiddenAgain.flatMap((dir) => ['--perms', '0711', '--tmpfs', dir]),
  ];
  // A hidden directory at or below a temporary one is covered by the run's own, bound over it
  // (a plain directory there, once a way down is made): made read-only, so would that be.
  const readOnly = [
    '/dev',
    ...hidden.filter((dir) => hiddenAgain.includes(dir) || !temp.some((top) => isInside(dir, top))),
  ];
  const userNamespace = asRunUid ? ['--unshare-user', '--disable-userns'] : [];
  return (home, cwd, addDirs = []) => ({
    asRunUid,
    input: KEYRING_FILTER,
    argv: [
      bwrap,
      ...userNamespace,
      ...['--seccomp', String(LAUNCHER_INPUT_FD)],
      ...['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc'],
      ...['--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev'],
      ...hidden.flatMap((dir) => ['--perms', '0711', '--tmpfs', dir]),
      ...SANDBOX_TEMP.flatMap(([dir, name]) => ['--bind', join(sandboxTempOf(home), name), dir]),
      ...cli,
      ...wayDown(home),
      ...['--bind', home, home],
      ...addDirs.flatMap((dir) => [...wayDown(dir), '--bind', dir, dir]),
      ...wayDown(cwd),
      ...['--bind', cwd, cwd],
      // Nothing is to be written in bwrap's /dev or the emptied directories: their tmpfs would
      // take the host's memory.
      ...readOnly.flatMap((dir) => ['--remount-ro', dir]),
      ...['--chdir', cwd],
    ],
  });
}

/** Namespaces where RUN_NAMESPACES allows them and bwrap can make them here. */
async function namespacesFor(
  settings: IsolationSettings,
  launcher: Launcher,
  { homes, scratch }: RunRootDirs,
  uid: number,
): Promise<Sandboxing> {
  const none: Sandboxing = { namespaces: [], args: null, warnings: [] };
  if (settings.namespaces === 'off') return none;
  const bwrap = await searchPath('bwrap', settings.path);
  if (bwrap === null) return none;
  const realBin = await realpath(settings.claudeBin);
  // A home and a working directory like a run's, below the directories a sandbox hides.
  const probeHome = join(homes, `probe-${settings.workerId}`);
  const probeCwd = join(scratch, `probe-${settings.workerId}`);
  await mkdir(probeHome, { recursive: true, mode: 0o711 });
  await mkdir(probeCwd, { recursive: true, mode: 0o711 });
  await rm(sandboxTempOf(probeHome), { recursive: true, force: true });
  makeSandboxTemp(probeHome, uid, 0o711);
  try {
    // bwrap as the run's uid where the host lets a uid make a user namespace; as root where
    // only root may make namespaces (a host that restricts user namespaces, an older bwrap).
    let refused: string | null = null;
    for (const asRunUid of [true, false]) {
      const args = sandboxFor(bwrap, settings, realBin, asRunUid);
      const failed = await tryAsRunUid(launcher, uid, args(probeHome, probeCwd), {
        ...settings,
        workDir: probeCwd,
      });
      if (failed !== null) {
        refused ??= failed || 'it failed, saying nothing';
        continue;
      }
      const warnings =
        refused === null
          ? []
          : [
              `bwrap could not make a run's namespaces as its uid (${refused}): each run's sandbox starts as root, and a run may make user namespaces wherever the host lets a uid (see docs/security.md)`,
            ];
      return { namespaces: ['pid', 'ipc', 'mount'], args, warnings };
    }
    // Docker's default seccomp profile refuses new namespaces: the uid alone walls runs off.
    return {
      ...none,
      warnings: [
        `bwrap could not make a run's namespaces (${refused ?? ''}): runs are walled off by their uid alone (RUN_NAMESPACES=off says so without trying; see docs/security.md)`,
      ],
    };
  } finally {
    for (const dir of [probeHome, sandboxTempOf(probeHome), probeCwd]) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Checks that a run's uid can start the CLI and reach WORK_DIR, as a run will. */
async function probe(
  launcher: Launcher,
  uid: number,
  sandbox: Sandbox | null,
  settings: IsolationSettings,
): Promise<void> {
  const failed = await tryAsRunUid(launcher, uid, sandbox, settings);
  if (failed !== null) {
    throw new IsolationError(
      `a run's uid (${uid}) cannot start ${settings.claudeBin} in WORK_DIR=${settings.workDir}${failed ? `: ${failed}` : ''}`,
    );
  }
}

/**
 * Starts, as a run starts, a shell as the run's uid that checks the CLI and WORK_DIR: null when
 * that worked, else the last line it (or what starts it) said.
 */
async function tryAsRunUid(
  { setpriv, limits }: Launcher,
  uid: number,
  sandbox: Sandbox | null,
  settings: IsolationSettings,
): Promise<string | null> {
  const check = [
    '-c',
    'hint="every directory above it needs the search permission for others"; test -x "$1" || { echo "cannot execute $1 ($hint)"; exit 1; }; cd "$2" || { echo "cannot enter $2 ($hint)"; exit 1; }',
    'probe',
    settings.claudeBin,
    settings.workDir,
  ];
  const command = launchAsUid({ uid, setpriv, sandbox, limits }, '/bin/sh', check);
  const result = await execa(command.file, command.args, {
    reject: false,
    all: true,
    env: { PATH: '/usr/bin:/bin' },
    extendEnv: false,
    // Its input at LAUNCHER_INPUT_FD, as a run's launch gets it.
    stdio: ['ignore', 'pipe', 'pipe', 'ignore', command.input ?? 'ignore'],
    timeout: 10_000,
  });
  if (result.exitCode === 0) return null;
  if (result.timedOut) return 'it did not finish within 10 s';
  return result.all.trim().split('\n').at(-1) ?? '';
}

/** Uids that are accounts of this system: the pool skips them. */
async function accountUids(): Promise<Set<number>> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  return new Set(
    passwd
      .split('\n')
      .map((line) => Number(line.split(':')[2]))
      .filter((value) => Number.isInteger(value)),
  );
}
