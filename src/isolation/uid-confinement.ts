import { existsSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { readProcStat } from '../common/proc-stat.js';
import { withTimeout } from '../common/time.js';
import {
  childrenOf,
  findProcessesOfUid,
  processOfUid,
  processStartTime,
  LAUNCHER_REPORT_FD,
  type Confinement,
  type Launch,
  type ProcessRef,
} from '../executor/index.js';
import { becomeUid, SENDER_SHELL, stopUid, type Sender } from './tools.js';

/** bwrap and its arguments up to the command, for a run that gets namespaces of its own. */
export interface Sandbox {
  readonly argv: readonly string[];
  /**
   * Whether bwrap runs as the run's uid (setpriv starts it so), making a user namespace for the
   * others; false: it runs as root, and setpriv makes the CLI the run's uid inside.
   */
  readonly asRunUid: boolean;
  /** What bwrap reads on LAUNCHER_INPUT_FD (its seccomp program, KEYRING_FILTER). */
  readonly input?: Buffer;
}

export interface UidConfinementOptions {
  readonly uid: number;
  readonly setpriv: string;
  readonly sandbox: Sandbox | null;
  /** What the launch starts with, as root, to set the run's limits (see limitsLauncher). */
  readonly limits?: readonly string[] | undefined;
  /** What kill(-1) as the uid is sent from (see signalUid); SENDER_SHELL unless a test says. */
  readonly senderShell?: string | undefined;
}

/** A uid confinement, which also says whether the uid may go back to the pool. */
export interface UidConfinement extends Confinement {
  /** Whether the last sweep left no process of the uid: only then may another run have it. */
  readonly cleared: boolean;
}

/**
 * A run confined to a uid of its own (and, where the kernel allows, to PID, IPC and mount
 * namespaces of its own): the worker starts `sh -c <limits> ... [bwrap ...] setpriv <uid> --
 * claude ...` (see launchAsUid) and knows every process of the run by its uid.
 */
export function uidConfinement(options: UidConfinementOptions): UidConfinement {
  const { uid, setpriv, sandbox, limits } = options;
  const sender: Sender = { setpriv, shell: options.senderShell ?? SENDER_SHELL };
  // Set when a sweep left no process of the uid: none can appear until the worker launches one
  // (only root starts processes as another uid), so closing the box need not look again.
  let clean = false;
  // The CLI once found: whether it still runs is one read of its stat, where finding it again
  // reads every process of the host (its stdout is looked at twice a second).
  let known: ProcessRef | null = null;
  // The sandbox's init, as bwrap reports it when it starts (null: no report to go by).
  let init: Promise<SandboxInit | null> = Promise.resolve(null);
  const find = (launched?: number): Promise<ProcessRef[]> => findProcessesOfUid(uid, launched);
  const cli = async (launched: number): Promise<number | null> => {
    if (sandbox === null) return launched;
    if (known !== null && (await processStartTime(known.pid)) === known.startTime) {
      return known.pid;
    }
    const inTree = sandboxedCli(launched, uid);
    const launchers = [launched, (await init)?.pid] as const;
    known = inTree === undefined ? oldest(notLaunchers(await find(), launchers)) : inTree;
    return known?.pid ?? null;
  };
  return {
    get cleared() {
      return clean;
    },
    command: (bin, args) => {
      clean = false;
      known = null;
      init = Promise.resolve(null);
      return launchAsUid({ uid, setpriv, sandbox, limits }, bin, args, [
        '--info-fd',
        String(LAUNCHER_REPORT_FD),
      ]);
    },
    find,
    // setpriv execs the CLI, so without a sandbox the launched pid is the CLI; inside one, the
    // CLI is the run's first process (its tools all start after it).
    cli,
    // bwrap keeps a copy of the CLI's stdout: whether the CLI closed its own, /proc tells.
    ...(sandbox === null
      ? {}
      : {
          stdoutClosed: async (launched: number) => {
            const pid = await cli(launched);
            if (pid === null) return false;
            return readlink(`/proc/${pid}/fd/1`).then(
              () => false,
              (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT',
            );
          },
          launcherReport: (report) => {
            init = sandboxInit(report);
          },
        }),
    sweep: async (launched, graceMs, launchedExited = false) => {
      if (clean) return 0;
      // bwrap's init in the run's PID namespace reports the CLI's end, and bwrap exits with its
      // status without waiting for the init. The kernel sends the init SIGKILL
      // (--die-with-parent) before it tells the worker that bwrap exited, and lets the init end
      // only once every other process of its namespace is gone: once it has, nothing of the
      // run is left, and nothing needs looking for.
      if (sandbox !== null && launchedExited && (await ended(init))) {
        clean = true;
        return 0;
      }
      const swept = await stopUid(uid, sender, graceMs, () => find(launched));
      clean = swept.cleared;
      return swept.found;
    },
  };
}

/**
 * How `bin args` starts as the run's uid: behind the commands that set its limits, through
 * setpriv, behind the sandbox where there is one, or in front of it where the sandbox starts as
 * the uid (see Sandbox); `report`: bwrap's options for its report. Each execs the next: the
 * launched pid is the CLI's, or bwrap's. Never as a process the worker's spawn makes the uid
 * itself: that process takes the uid before its exec, while the spawn holds the worker's event
 * loop until that exec, and a process of the uid (on a host where one outlived the pool's
 * clearing, or another worker's with an overlapping uid range) could stop it there, stopping
 * the worker. setpriv takes the uid after its own exec, as root.
 */
export function launchAsUid(
  {
    uid,
    setpriv,
    sandbox,
    limits = [],
  }: Pick<UidConfinementOptions, 'uid' | 'setpriv' | 'sandbox' | 'limits'>,
  bin: string,
  args: readonly string[],
  report: readonly string[] = [],
): Launch {
  const asUid = [setpriv, ...becomeUid(uid)];
  const [bwrap = '', ...options] = sandbox?.argv ?? [];
  const sandboxed = [bwrap, ...report, ...options];
  const confined =
    sandbox === null
      ? asUid
      : sandbox.asRunUid
        ? [...asUid, ...sandboxed]
        : [...sandboxed, ...asUid];
  const chain = [...limits, ...confined, bin, ...args];
  const input = sandbox?.input;
  return { file: chain[0] ?? '', args: chain.slice(1), ...(input ? { input } : {}) };
}

/**
 * The CLI of a sandboxed run from the process tree, where the kernel lists children: bwrap
 * starts its init in the run's PID namespace, which starts setpriv, which becomes the CLI. Null
 * when it is not (yet, or any more) there; undefined when /proc cannot tell.
 */
function sandboxedCli(launched: number, uid: number): ProcessRef | null | undefined {
  const inits = childrenOf(launched);
  if (inits === null) return undefined;
  const init = inits[0];
  if (init === undefined) return null;
  // Orphans of the run are the init's children too: the CLI is the first of the run's uid.
  const own = (childrenOf(init) ?? []).flatMap((pid) => processOfUid(pid, uid) ?? []);
  return oldest(own);
}

/**
 * `processes` but bwrap (the launched pid) and its init (bwrap's child, or the pid bwrap
 * reported), which are of the run's uid too where bwrap runs as it: never the CLI.
 */
function notLaunchers(
  processes: readonly ProcessRef[],
  [launched, init]: readonly [number, number | undefined],
): ProcessRef[] {
  return processes.filter(
    ({ pid }) => pid !== launched && pid !== init && readProcStat(pid)?.ppid !== launched,
  );
}

/** How long the worker waits for a sandbox's report, and then for its init's end. */
const INIT_END_MS = 2000;

/** A sandbox's init; no start time: it was gone (or a zombie) already when the report came. */
export interface SandboxInit {
  readonly pid: number;
  readonly startTime: string | null;
}

/**
 * The init's pid from bwrap's report (`{"child-pid": 123, ...}`), or null when there is none to
 * go by (no report, or the init's /proc entry there but unreadable).
 */
export async function sandboxInit(report: Readable): Promise<SandboxInit | null> {
  let text = '';
  try {
    for await (const chunk of report) text += String(chunk);
    const pid: unknown = (JSON.parse(text) as Record<string, unknown>)['child-pid'];
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return null;
    const now = initState(pid);
    if (now === 'unknown') return null;
    return { pid, startTime: now === 'ended' ? null : now.startTime };
  } catch {
    return null;
  }
}

/**
 * Whether the sandbox's init has ended (or is a zombie), waiting up to INIT_END_MS for the report
 * and as long again for the end; false when there is no report to go by or the init outlasts it.
 */
async function ended(report: Promise<SandboxInit | null>): Promise<boolean> {
  const init = await withTimeout(report, INIT_END_MS).catch(() => null);
  if (init === null) return false;
  if (init.startTime === null) return true;
  const deadline = performance.now() + INIT_END_MS;
  for (;;) {
    const now = initState(init.pid);
    // Another process with the pid: the init ended before it came.
    if (now === 'ended' || (now !== 'unknown' && now.startTime !== init.startTime)) return true;
    if (performance.now() > deadline) return false;
    await sleep(2);
  }
}

/**
 * The start time of process `pid`; `ended` when it is gone or a zombie (the kernel has then
 * reaped the rest of its namespace); `unknown` when its stat is there but cannot be read (the
 * worker out of file descriptors, say), which must not pass for its end.
 */
function initState(pid: number): { readonly startTime: string } | 'ended' | 'unknown' {
  const stat = readProcStat(pid);
  if (stat === undefined) return existsSync(`/proc/${pid}`) ? 'unknown' : 'ended';
  return stat.state === 'Z' ? 'ended' : { startTime: stat.startTime };
}

function oldest(processes: readonly ProcessRef[]): ProcessRef | null {
  return [...processes].sort((a, b) => Number(a.startTime) - Number(b.startTime))[0] ?? null;
}
