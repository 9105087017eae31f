import type { Readable } from 'node:stream';
import { readProcStat } from '../common/proc-stat.js';
import {
  findRunProcesses,
  sweepRunProcesses,
  type Marker,
  type ProcessRef,
} from './process-tree.js';

/**
 * Where a run's processes live and how to reach all of them. Without isolation they share the
 * worker's uid and are known by a marker in their environment; with isolation (src/isolation)
 * they run as a uid of their own, which no process of theirs can shed.
 */
export interface Confinement {
  /** The program that starts the CLI, and its arguments (the CLI's own come last). */
  command(bin: string, args: readonly string[]): Launch;
  /**
   * Told the pid the worker spawned as soon as the spawn returns, while that process (or what is
   * left of it until the worker reaps it) is still there to read.
   */
  spawned?(launched: number): void;
  /** Every live process of the run; `launched` is the pid the worker spawned. */
  find(launched: number): Promise<ProcessRef[]>;
  /** The CLI's own process, which a polite stop (SIGINT) goes to. */
  cli(launched: number): Promise<number | null>;
  /**
   * Stops every process of the run: SIGTERM, then SIGKILL past `graceMs` (0: SIGKILL at once),
   * again until nothing is left. Returns how many processes it found to stop. `launchedExited`:
   * the launched process has exited with a code of its own (it was not killed), which in a PID
   * namespace of the run's own means that the run ends with the namespace's init: once that is
   * gone, nothing of the run is left to look for.
   */
  sweep(launched: number | undefined, graceMs: number, launchedExited?: boolean): Promise<number>;
  /**
   * Whether the CLI closed its stdout, for confinements where a process between the worker
   * and the CLI (a sandbox's) holds the same pipe open, so its end never shows on the pipe.
   */
  stdoutClosed?(launched: number): Promise<boolean>;
  /**
   * Set where the program that starts the CLI reports on a pipe at LAUNCHER_REPORT_FD (bwrap's
   * --info-fd), which `command` then tells it to: the executor opens that pipe and hands its
   * read end here before anything else. The launcher closes it before the CLI starts, so no
   * process of the run can write to it.
   */
  launcherReport?(report: Readable): void;
}

/** A program to start: its file and arguments. */
export interface Launch {
  readonly file: string;
  readonly args: string[];
  /** What the launcher reads on LAUNCHER_INPUT_FD, where it takes anything (bwrap's --seccomp). */
  readonly input?: Buffer;
}

/** The file descriptor a launcher's report comes on, in the launcher (see launcherReport). */
export const LAUNCHER_REPORT_FD = 3;
/** The file descriptor a launcher reads Launch.input on. */
export const LAUNCHER_INPUT_FD = 4;

/**
 * Processes known by an environment entry every process of the run inherits. Only those started
 * since the CLI are looked at: none of the run's is older, and reading every environment on the
 * host is what a sweep of a busy host would spend most on.
 */
export function markerConfinement(marker: Marker): Confinement {
  let since: number | undefined;
  return {
    command: (bin, args) => ({ file: bin, args: [...args] }),
    spawned: (launched) => {
      since = startedAt(launched);
    },
    find: (launched) => findRunProcesses(marker, { rootPid: launched, since }),
    cli: (launched) => Promise.resolve(launched),
    sweep: (launched, graceMs) => sweepRunProcesses(marker, { graceMs, rootPid: launched, since }),
  };
}

/** When the process started, in clock ticks since boot; undefined when it cannot be read. */
function startedAt(pid: number): number | undefined {
  const startTime = readProcStat(pid)?.startTime;
  return startTime === undefined ? undefined : Number(startTime);
}

export type { ProcessRef };
