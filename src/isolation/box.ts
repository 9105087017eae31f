import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Confinement } from '../executor/index.js';
import type { RunIsolation } from '../contract/index.js';
import { handOver, openPathTo, takeBack, type MayTake } from './ownership.js';
import { DirectoryInUseError, IsolationError } from './errors.js';
import type { UidLease } from './uid-pool.js';
import { uidConfinement, type Sandbox, type UidConfinement } from './uid-confinement.js';
import { removeFilesOf, stampTempDirs, type TempStamp } from './shared-temp.js';
import { removeIpcOf, SENDER_SHELL } from './tools.js';
import { whileStopped } from './stopped-run.js';
import { homeOf, makeSandboxTemp, removeHome, removeHomesOf } from './homes.js';
import { runReaching, type RunningRun, type UnclearedReach } from './uncleared-reach.js';

/** Where one run lives, and what it is given: made before the CLI starts, undone after. */
export interface RunBox {
  /** How the run is isolated, for its `started` event. */
  readonly isolation: RunIsolation;
  /** Set in the CLI's environment over the worker's allow-listed one. */
  readonly env: Readonly<Record<string, string>>;
  /** The CLI's config dir as this run sees it: its sessions live in `projects/`. */
  readonly configDir: string;
  /** How the run's processes are started and found; undefined: by their environment marker. */
  readonly confinement: Confinement | undefined;
  /** Makes everything put in the run's home so far the run's own (call before the CLI starts). */
  seal(): Promise<void>;
  /**
   * Writes a file only this run (and root) can read, which goes when the box closes; returns its
   * path as the run sees it. For what must not go on argv: MCP configs and settings with secrets.
   */
  writePrivateFile(name: string, content: string): Promise<string>;
  /**
   * Runs `step` while every process of the run is stopped, so that root can look at directories
   * the run owns without the run changing them meanwhile; null, without `step`, where they could
   * not all be stopped. A run without a uid of its own is the worker's uid: nothing to guard.
   */
  readonly whileStopped: <T>(step: () => Promise<T>) => Promise<T | null>;
  /** Stops what is left of the run, closes its directories and frees its uid. */
  close(): Promise<void>;
  /**
   * Where the box's close set the run's uid aside: `paths` (the job's scratch directory and its
   * note, the job being over) go when that uid is cleared, as a process of the run may be in them
   * until then.
   */
  removeOnceCleared(...paths: string[]): void;
  /**
   * Whether the box's close found nothing of the run left; false before it, or where a process
   * of the run may still be there (the uid is then set aside).
   */
  readonly runGone: boolean;
}

/** The sandbox of a run in `home`, working in `cwd`, reaching `addDirs` too. */
export type SandboxFor = (home: string, cwd: string, addDirs?: readonly string[]) => Sandbox;

export interface UidBoxSpec {
  readonly lease: UidLease;
  readonly setpriv: string;
  /** What the run's launch starts with, as root, to set its limits (see limitsLauncher). */
  readonly limits: readonly string[];
  readonly runRoot: string;
  readonly workRoot: string;
  /** WORK_DIR, where every entry of addDirs is (the working directory may be a scratch one). */
  readonly workDir: string;
  readonly runId: string;
  readonly cwd: string;
  /** The job's other directories, inside WORK_DIR: the run's too while it lasts. */
  readonly addDirs: readonly string[];
  readonly mayTake: MayTake;
  /** The run's sandbox when namespaces are on, else null. */
  readonly sandbox: SandboxFor | null;
  readonly namespaces: RunIsolation['namespaces'];
  /** What kill(-1) as the uid is sent from; SENDER_SHELL unless a test says. */
  readonly senderShell?: string;
  /** An earlier run not cleared away that could still reach one of `dirs`, or null. */
  readonly unclearedReaching?: (dirs: readonly string[]) => Promise<UnclearedReach | null>;
  /** The runs of other uids going on now, and what they were handed (see runningRuns). */
  readonly runningRuns?: (ownUid: number) => readonly RunningRun[];
}

export async function openUidBox(spec: UidBoxSpec): Promise<RunBox> {
  const { lease, cwd } = spec;
  const uid = lease.uid;
  // The run's working directory and the job's others: handed over, taken back, its reach.
  const reached = [cwd, ...spec.addDirs];
  const homes = join(spec.runRoot, 'homes');
  const home = homeOf(homes, uid, spec.runId);
  const configDir = join(home, '.claude');
  const tmp = join(home, 'tmp');
  await removeOldHomes(homes, lease);
  try {
    await mustBeOutOfReach(reached, spec.unclearedReaching);
    // The calls on root's own directories are synchronous: cheaper for the worker than their
    // promise forms.
    for (const dir of [home, configDir, tmp]) mkdirSync(dir, { mode: 0o700 });
    if (spec.sandbox !== null) makeSandboxTemp(home, uid);
    const ways: (readonly [string, string])[] = [
      [spec.workRoot, cwd],
      ...spec.addDirs.map((dir) => [spec.workDir, dir] as const),
    ];
    await handOverAll(lease, reached, ways, spec);
  } catch (error) {
    await removeHome(home).catch(() => undefined);
    await lease.release();
    throw error;
  }
  const sandbox = spec.sandbox?.(home, cwd, spec.addDirs) ?? null;
  const { setpriv, senderShell, limits } = spec;
  const confinement = uidConfinement({ uid, setpriv, sandbox, limits, senderShell });
  // Without a sandbox's private ones, the run shares the host's temporary directories and IPC.
  const tempStamp = sandbox === null ? stampTempDirs() : null;
  let closed: Promise<void> | null = null;
  return {
    isolation: { mode: 'uid', uid, namespaces: spec.namespaces },
    env: {
      HOME: home,
      CLAUDE_CONFIG_DIR: configDir,
      TMPDIR: tmp,
      USER: 'claudebox',
      LOGNAME: 'claudebox',
    },
    configDir,
    confinement,
    seal: () => handOver(home, uid, spec.mayTake),
    whileStopped: (step) =>
      whileStopped(uid, { setpriv, shell: senderShell ?? SENDER_SHELL }, step),
    writePrivateFile: (name, content) => {
      // In the config dir, which is the run's alone (0700) and removed with its home.
      const path = join(configDir, name);
      writeFileSync(path, content, { mode: 0o400, flag: 'wx' });
      chownSync(path, uid, uid);
      return Promise.resolve(path);
    },
    get runGone() {
      return closed !== null && confinement.cleared;
    },
    removeOnceCleared: (...paths) => lease.leaving(paths),
    close: () =>
      (closed ??= closeUidBox(lease, confinement, reached, () =>
        removeLeftovers(lease, home, tempStamp, setpriv),
      )),
  };
}

/**
 * Stops what is left of the run and takes its directories back, then `removeLeftovers`. Where
 * something of the run may be left, the uid is set aside instead: its home, which a process of
 * the run could still change, goes when the uid is cleared (see clearUid).
 */
async function closeUidBox(
  lease: UidLease,
  confinement: UidConfinement,
  reached: readonly string[],
  removeLeftovers: () => Promise<void>,
): Promise<void> {
  await orSetAside(lease, reached, async () => {
    // Nothing of the run may write while its places are taken back.
    await confinement.sweep(undefined, 0);
    // Where something of it may be left, its reach is on record before they are root's again.
    if (!confinement.cleared) lease.setAside(reached);
    for (const dir of reached) takeBack(dir);
  });
  mustBeCleared(confinement, lease, reached);
  await removeLeftovers();
}

/**
 * Hands the run its directories, recorded with its lease first (see takeBackHanded). Where that
 * fails, no process of the run has started: what was handed over already is taken back at once,
 * and nothing else (a directory it never got to may be another run's).
 */
async function handOverAll(
  lease: UidLease,
  reached: readonly string[],
  ways: readonly (readonly [root: string, dir: string])[],
  { mayTake, runningRuns }: UidBoxSpec,
): Promise<void> {
  // Two runs in one tree: each could change what the other's hand-over and taking back walk.
  const others = runningRuns?.(lease.uid) ?? [];
  const running = runReaching(others, reached);
  if (running !== null) {
    throw new DirectoryInUseError(
      `${running.dir} is in use by a run going on now (uid ${running.uid}): two jobs cannot work in one directory at the same time`,
    );
  }
  // Recorded before anything takes a turn of the event loop: another job of this worker (or of
  // another) then finds these directories in use.
  lease.handing(reached);
  const inUse = (path: string): boolean => runReaching(others, [path]) !== null;
  const handed: string[] = [];
  try {
    for (const [root, dir] of ways) await openPathTo(root, dir, mayTake, inUse);
    for (const dir of reached) {
      handed.push(dir);
      await handOver(dir, lease.uid, mayTake);
    }
  } catch (error) {
    for (const dir of handed) takeBack(dir);
    throw error;
  }
}

/**
 * Throws, naming the uid, where an earlier run not cleared away (its uid set aside, or its worker
 * dead) could still reach one of `dirs`: a process of it may still be there, to change what this
 * run is handed.
 */
export async function mustBeOutOfReach(
  dirs: readonly string[],
  reaching: UidBoxSpec['unclearedReaching'],
): Promise<void> {
  const reach = (await reaching?.(dirs)) ?? null;
  if (reach === null) return;
  throw new IsolationError(
    `${reach.dir} is within reach of an earlier run whose uid ${reach.uid} could not be cleared yet: it goes to no run until that uid is cleared`,
  );
}

/**
 * A home the clearing of its uid could not remove (see clearUid), or one an earlier version left:
 * the uid's next run clears it away, or none gets the uid until the pool has cleared it again.
 */
async function removeOldHomes(homes: string, lease: UidLease): Promise<void> {
  await orSetAside(lease, [], () => removeHomesOf(homes, lease.uid));
}

/**
 * Removes what a cleared run left (its home; where it had no sandbox, its files in the shared
 * temporary directories and its IPC objects), then gives its uid back. Where that fails, the
 * uid is set aside instead: the pool clears it again before another run gets it.
 */
async function removeLeftovers(
  lease: UidLease,
  home: string,
  tempStamp: TempStamp | null,
  setpriv: string,
): Promise<void> {
  await orSetAside(lease, [], async () => {
    await removeHome(home);
    if (tempStamp !== null) {
      await removeFilesOf(lease.uid, { since: tempStamp });
      await removeIpcOf(lease.uid, setpriv);
    }
  });
  await lease.release();
}

/**
 * Runs `work`; where it throws, the uid is set aside (with the directories its run could still
 * reach) before the error goes on, so that the pool clears it again before another run gets it.
 */
async function orSetAside(
  lease: UidLease,
  reached: readonly string[],
  work: () => Promise<void>,
): Promise<void> {
  try {
    await work();
  } catch (error) {
    lease.setAside(reached);
    throw error;
  }
}

/**
 * Throws unless the run's last sweep left no process of its uid: the uid is then set aside,
 * leased until the pool manages to clear it.
 */
function mustBeCleared(
  confinement: UidConfinement,
  lease: UidLease,
  reached: readonly string[],
): void {
  if (confinement.cleared) return;
  lease.setAside(reached);
  throw new IsolationError(
    `a process of uid ${lease.uid} outlived its run and every kill sent as that uid: the uid stays out of the pool until it can be cleared`,
  );
}

/**
 * A run with no isolation: the worker's own uid, home and Claude config dir. Its private files
 * go in a temporary directory of its own, not in the config dir every such run shares.
 */
export function sharedBox(configDir: string, reason: string): RunBox {
  let privateDir: Promise<string> | null = null;
  return {
    isolation: { mode: 'off', uid: null, namespaces: [], reason },
    // Its processes are the worker's uid's: nothing it could change is the worker's to remove.
    runGone: true,
    removeOnceCleared: () => undefined,
    env: {},
    configDir,
    confinement: undefined,
    seal: () => Promise.resolve(),
    whileStopped: (step) => step(),
    writePrivateFile: async (name, content) => {
      privateDir ??= mkdtemp(join(tmpdir(), 'claudebox-run-'));
      const path = join(await privateDir, name);
      await writeFile(path, content, { mode: 0o400, flag: 'wx' });
      return path;
    },
    close: async () => {
      const dir = privateDir;
      privateDir = null;
      if (dir !== null) await rm(await dir, { recursive: true, force: true });
    },
  };
}
