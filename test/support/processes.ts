import { readdirSync, readFileSync } from 'node:fs';

/**
 * What /proc says about processes, read independently of the code under test so a test can
 * tell whether a run really left nothing behind.
 */

/**
 * Alive and not a zombie: some thread of it is not, for a process whose first thread exited
 * alone lives on in its other threads.
 */
export function isAlive(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    });
  } catch {
    return false;
  }
}

/** Live pids whose environment has the entry NAME=value. */
export function pidsWithEnv(name: string, value: string): number[] {
  const entry = `${name}=${value}`;
  const found: number[] = [];
  for (const dir of readdirSync('/proc')) {
    if (!/^\d+$/.test(dir)) continue;
    const pid = Number(dir);
    try {
      const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (vars.includes(entry) && isAlive(pid)) found.push(pid);
    } catch {
      // gone, or not readable
    }
  }
  return found;
}

/** Each process as `pid uid state parent: command line`, for a failing test to say what it saw. */
export function describeProcesses(pids: readonly number[]): string {
  return pids
    .map((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return `${pid} uid ${uid} ${state} parent ${ppid}: ${cmdline}`;
      } catch {
        return `${pid} (gone)`;
      }
    })
    .join('; ');
}

/** Live pids whose command line contains `needle`. */
export function pidsWithCommandLine(needle: string): number[] {
  const found: number[] = [];
  for (const dir of readdirSync('/proc')) {
    if (!/^\d+$/.test(dir) || Number(dir) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${dir}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(needle) && isAlive(Number(dir))) found.push(Number(dir));
    } catch {
      // gone
    }
  }
  return found;
}

/** Waits until `check` holds or the time is up; returns whether it held. */
export async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Live pids running as `uid` (by any of their real, effective, saved or filesystem uids). */
export function pidsOfUid(uid: number): number[] {
  return pidsOfUidWhere(uid, (pid) => isAlive(pid));
}

/** Zombies of `uid`: dead, but counted against its process limit until their parent reaps them. */
export function zombiesOfUid(uid: number): number[] {
  return pidsOfUidWhere(uid, (_pid, status) => /^State:\s+Z/m.test(status));
}

/** The pids of `uid`'s processes whose /proc status passes `also`. */
function pidsOfUidWhere(uid: number, also: (pid: number, status: string) => boolean): number[] {
  const found: number[] = [];
  for (const dir of readdirSync('/proc')) {
    if (!/^\d+$/.test(dir)) continue;
    try {
      const status = readFileSync(`/proc/${dir}/status`, 'utf8');
      const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number) ?? [];
      if (uids.includes(uid) && also(Number(dir), status)) found.push(Number(dir));
    } catch {
      // gone
    }
  }
  return found;
}

/**
 * Live processes of a job's run: those carrying its job id, less the sandbox's own (bwrap and
 * its init, when runs get namespaces), so a count means the CLI and what it started.
 */
export function runPids(jobId: string): number[] {
  return pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'bwrap';
    } catch {
      return false;
    }
  });
}

/** A live process of some run, known by the ids the worker put in its environment. */
export interface RunProcess {
  readonly pid: number;
  readonly jobId: string;
  readonly runId: string;
  /** Its real uid (a pool uid when runs are isolated; root for a moment while one starts). */
  readonly uid: number;
}

/** Every live process carrying a job id and a run id, in one pass over /proc. */
export function liveRunProcesses(): RunProcess[] {
  const found: RunProcess[] = [];
  for (const dir of readdirSync('/proc')) {
    if (!/^\d+$/.test(dir)) continue;
    const pid = Number(dir);
    try {
      const vars = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const value = (name: string): string | undefined =>
        vars.find((entry) => entry.startsWith(`${name}=`))?.slice(name.length + 1);
      const jobId = value('CLAUDEBOX_JOB_ID');
      const runId = value('CLAUDEBOX_RUN_ID');
      if (jobId !== undefined && runId !== undefined && isAlive(pid)) {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
        found.push({ pid, jobId, runId, uid });
      }
    } catch {
      // gone, or not readable
    }
  }
  return found;
}

/** CAP_SYS_RESOURCE's bit in a capability set. */
export const CAP_SYS_RESOURCE = 24;

/** Whether process `pid` has the capability `bit` in its effective set. */
export function hasCapability(pid: number, bit: number): boolean {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  return ((BigInt(`0x${effective}`) >> BigInt(bit)) & 1n) === 1n;
}
