import { listOrNothing, readOrNothing } from './paths.js';

/** What /proc/<pid>/stat says of a process that the worker needs. */
export interface ProcStat {
  /**
   * One letter: R running, S sleeping, Z zombie (exited, not yet reaped), ...: the process's,
   * which is a live thread's where its first thread exited alone (see processState).
   */
  readonly state: string;
  readonly ppid: number;
  /** When it started, in clock ticks since boot: with the pid, it names one process. */
  readonly startTime: string;
}

/** A file of /proc/<pid>/, or undefined when the process is gone or not ours to read. */
export function readProcFile(pid: number, name: string): string | undefined {
  return readOrNothing(`/proc/${pid}/${name}`);
}

/**
 * The fields of /proc/<pid>/stat after the command's name, from the state (field 3 of proc(5))
 * on, or undefined when the process is gone or not ours to read.
 */
export function readProcStatFields(pid: number): string[] | undefined {
  return statFields(readProcFile(pid, 'stat'));
}

function statFields(stat: string | undefined): string[] | undefined {
  // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The process's stat, or undefined when it is gone or not ours to read. */
export function readProcStat(pid: number): ProcStat | undefined {
  const fields = readProcStatFields(pid);
  if (fields === undefined) return undefined;
  const [state, ppid] = fields;
  const startTime = fields[19];
  if (state === undefined || ppid === undefined || startTime === undefined) return undefined;
  return { state: processState(pid, state), ppid: Number(ppid), startTime };
}

/**
 * The state of process `pid`, whose first thread is in `leaderState`. A first thread that
 * exited while other threads of the process go on shows Z, yet the process lives, and so does
 * its PID namespace where it is an init: a run can make its sandbox's init so, by ptrace. Its
 * state is then that of a thread still there.
 */
function processState(pid: number, leaderState: string): string {
  if (leaderState !== 'Z') return leaderState;
  for (const tid of listOrNothing(`/proc/${pid}/task`)) {
    const [state] = statFields(readOrNothing(`/proc/${pid}/task/${tid}/stat`)) ?? [];
    if (state !== undefined && state !== 'Z' && state !== 'X') return state;
  }
  return leaderState;
}

/** The start time of a live process (not a zombie), or null when it is gone or not ours to read. */
export function liveStartTime(pid: number): string | null {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== 'Z' ? stat.startTime : null;
}
