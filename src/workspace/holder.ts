import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readProcStat } from '../common/proc-stat.js';

/**
 * Who holds a checkout, in a file beside it: the worker process using it, or, for a failed
 * attempt's checkout kept for debugging, the time it may go. A process is named by its pid and
 * its start time (from /proc, where there is one), so a pid reused after a crash (pid 1 of a
 * restarted container) is not taken for the worker that died.
 */
export type Holder =
  | { readonly pid: number; readonly started: string; readonly cache: string }
  | { readonly keepUntil: number; readonly cache: string };

/** This process, as a holder file names it. */
export function thisProcess(): { pid: number; started: string } {
  return { pid: process.pid, started: startTimeOf(process.pid) ?? '' };
}

/** Whether the process a holder (or lock) file names still runs. */
export function processAlive(pid: number, started: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTimeOf(pid);
  return started === '' || now === null || now === started;
}

/** When the process started (see readProcStat), or null when /proc cannot tell. */
function startTimeOf(pid: number): string | null {
  return readProcStat(pid)?.startTime ?? null;
}

/** Written whole or not at all: a reader never sees half a holder. */
export async function writeHolder(path: string, holder: Holder): Promise<void> {
  const partial = `${path}.${process.pid}.partial`;
  await writeFile(partial, JSON.stringify(holder), { mode: 0o600 });
  await rename(partial, path);
}

export async function readHolder(path: string): Promise<Holder | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Holder;
  } catch {
    return null;
  }
}

export async function removeHolder(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Whether a checkout's holder keeps it: its worker runs, or its time to be kept is not over. */
export function holds(holder: Holder | null, now: number): boolean {
  if (holder === null) return false;
  if ('keepUntil' in holder) return holder.keepUntil > now;
  return processAlive(holder.pid, holder.started);
}
