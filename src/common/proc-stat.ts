import { readFileSync } from 'node:fs';

/** What /proc/<pid>/stat says of a process that the worker needs. */
export interface ProcStat {
  /** One letter: R running, S sleeping, Z zombie (exited, not yet reaped), ... */
  readonly state: string;
  readonly ppid: number;
  /** When it started, in clock ticks since boot: with the pid, it names one process. */
  readonly startTime: string;
}

/**
 * The process's stat, or undefined when it is gone or not ours to read. Read synchronously:
 * the kernel makes the file up as it is read, and the promise form's thread-pool round trips
 * cost more than the read.
 */
export function readProcStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces and ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, ppid] = fields;
  const startTime = fields[19];
  if (state === undefined || ppid === undefined || startTime === undefined) return undefined;
  return { state, ppid: Number(ppid), startTime };
}
