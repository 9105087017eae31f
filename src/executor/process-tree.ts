import { existsSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { liveStartTime, readProcFile, readProcStat, type ProcStat } from '../common/proc-stat.js';

/**
 * Finding and stopping every process of a run.
 *
 * The CLI runs each Bash tool command in a session of its own, so a process-group kill misses
 * them, and once the CLI dies they are re-parented to PID 1, so walking parent ids finds them
 * only while the CLI lives. Every process of a run therefore carries a marker variable in its
 * environment (tools inherit the CLI's environment), and /proc tells us who has it. Parent ids
 * are walked as well, for a descendant that scrubbed its environment.
 */

/** A process, identified by pid plus start time so a recycled pid is never mistaken for it. */
export interface ProcessRef {
  readonly pid: number;
  readonly startTime: string;
}

export interface Marker {
  readonly name: string;
  readonly value: string;
}

/**
 * /proc's files are made up by the kernel as they are read: reading them synchronously costs a
 * fraction of fs/promises, whose four thread-pool round trips a file dominated a worker's CPU. A
 * scan of the host reads them a slice at a time, with a turn of the event loop between slices,
 * so that a host of many processes does not hold up the runs' events.
 */
const SLICE = 64;

/** `read` of each pid, a slice at a time; pids it has nothing for are left out. */
async function readEach<T>(
  pids: readonly number[],
  read: (pid: number) => T | undefined,
): Promise<Map<number, T>> {
  const found = new Map<number, T>();
  for (let at = 0; at < pids.length; at += SLICE) {
    if (at > 0) await nextTurn();
    for (const pid of pids.slice(at, at + SLICE)) {
      const value = read(pid);
      if (value !== undefined) found.set(pid, value);
    }
  }
  return found;
}

/** Whether the process's environment holds exactly the entry `NAME=value`. */
async function carriesMarker(pid: number, entry: Buffer): Promise<boolean> {
  try {
    const environ = await readProcFileAsync(`/proc/${pid}/environ`);
    // Entries are NUL-terminated: match a whole entry, not the prefix of a longer value.
    if (environ.subarray(0, entry.length + 1).equals(Buffer.concat([entry, NUL]))) return true;
    return environ.indexOf(Buffer.concat([NUL, entry, NUL])) !== -1;
  } catch {
    return false; // gone, or not ours to read
  }
}

/** Under half of Buffer.poolSize: such Buffers are slices of Node's shared pool. */
const PROC_CHUNK = 4000;

/**
 * A /proc file, read a few KB at a time. readFile reads a file of no stated size (all of /proc's)
 * into a 64 KiB buffer of its own; a scan of the host made hundreds of them, and a heap that
 * counts them towards its next full collection then collected far more often.
 */
async function readProcFileAsync(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(PROC_CHUNK);
      const { bytesRead } = await file.read(chunk, 0, PROC_CHUNK, null);
      if (bytesRead === 0) return Buffer.concat(chunks);
      chunks.push(chunk.subarray(0, bytesRead));
    }
  } finally {
    await file.close();
  }
}

const NUL = Buffer.from([0]);

/** What /proc/<pid>/status says of a process: its parent and its uids. */
interface ProcStatus {
  readonly ppid: number;
  /** The real, effective, saved and filesystem uids. */
  readonly uids: number[];
}

function readStatus(pid: number): ProcStatus | undefined {
  const status = readProcFile(pid, 'status');
  if (status === undefined) return undefined;
  const ppid = /^PPid:\s+(\d+)/m.exec(status)?.[1];
  const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1];
  if (ppid === undefined || uids === undefined) return undefined;
  return { ppid: Number(ppid), uids: uids.trim().split(/\s+/).map(Number) };
}

/**
 * Every live process running as `uid` (by any of its uids), plus `rootPid` and its descendants.
 * A uid is something a process without privileges cannot shed: no new session, scrubbed
 * environment or double fork takes a process out of this list.
 */
export async function findProcessesOfUid(uid: number, rootPid?: number): Promise<ProcessRef[]> {
  // One file a process: /proc holds the whole host.
  const statuses = await readEach(listPids(), readStatus);
  const found = new Set<number>();
  for (const [pid, status] of statuses) if (status.uids.includes(uid)) found.add(pid);
  if (rootPid !== undefined && statuses.has(rootPid)) {
    found.add(rootPid);
    addDescendants(rootPid, statuses, found);
  }
  found.delete(process.pid);
  // The start time, which tells a recycled pid, is in stat: read for the few found only.
  return toRefs(found, await readEach([...found], readProcStat));
}

function toRefs(found: Set<number>, stats: Map<number, ProcStat>): ProcessRef[] {
  return [...found]
    .map((pid) => ({ pid, stat: stats.get(pid) }))
    .filter((entry): entry is { pid: number; stat: ProcStat } => entry.stat !== undefined)
    .filter(({ stat }) => stat.state !== 'Z')
    .map(({ pid, stat }) => ({ pid, startTime: stat.startTime }));
}

function listPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Whether this kernel lists a process's children in /proc (CONFIG_PROC_CHILDREN). */
let childrenListed: boolean | undefined;

/**
 * The children of `pid` (of its main thread), from /proc; null where the kernel does not list
 * them, [] when it has none or is gone.
 */
export function childrenOf(pid: number): number[] | null {
  childrenListed ??= existsSync(`/proc/${process.pid}/task/${process.pid}/children`);
  if (!childrenListed) return null;
  const listed = readProcFile(pid, `task/${pid}/children`);
  return listed === undefined ? [] : listed.split(' ').filter(Boolean).map(Number);
}

/** `pid` as a ProcessRef when it is alive and runs as `uid`, else null. */
export function processOfUid(pid: number, uid: number): ProcessRef | null {
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === 'Z') return null;
  return readStatus(pid)?.uids.includes(uid) === true ? { pid, startTime: stat.startTime } : null;
}

/** Where findRunProcesses looks besides the marker, and since when. */
export interface RunScope {
  /** Also this process and its descendants. */
  readonly rootPid?: number | undefined;
  /** A start time (clock ticks since boot) no process of the run is older than. */
  readonly since?: number | undefined;
}

/**
 * Every live process started since `since` that carries the marker, or that descends from
 * `rootPid`, never this process itself. Zombies are left out: they are already dead and only
 * wait for their parent.
 */
export async function findRunProcesses(
  marker: Marker,
  { rootPid, since }: RunScope = {},
): Promise<ProcessRef[]> {
  const entry = Buffer.from(`${marker.name}=${marker.value}`);
  const stats = await readEach(listPids(), readProcStat);
  const found = new Set<number>();
  const young = [...stats].filter(([, stat]) => since === undefined || +stat.startTime >= since);
  // Not synchronously: reading another process's environment reads its memory, which a process
  // can keep locked for a while.
  await Promise.all(
    young.map(async ([pid]) => {
      if (await carriesMarker(pid, entry)) found.add(pid);
    }),
  );
  if (rootPid !== undefined && stats.has(rootPid)) {
    found.add(rootPid);
    addDescendants(rootPid, stats, found);
  }
  found.delete(process.pid);
  return toRefs(found, stats);
}

function addDescendants(
  root: number,
  stats: ReadonlyMap<number, { readonly ppid: number }>,
  into: Set<number>,
): void {
  const children = new Map<number, number[]>();
  for (const [pid, stat] of stats) {
    const siblings = children.get(stat.ppid) ?? [];
    siblings.push(pid);
    children.set(stat.ppid, siblings);
  }
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    for (const child of children.get(pid) ?? []) {
      if (!into.has(child)) {
        into.add(child);
        stack.push(child);
      }
    }
  }
}

/** Sends a signal to each process that is still the one we found (same start time). */
export async function signalProcesses(
  processes: readonly ProcessRef[],
  signal: NodeJS.Signals,
): Promise<void> {
  const stats = await readEach(
    processes.map(({ pid }) => pid),
    readProcStat,
  );
  for (const { pid, startTime } of processes) {
    if (stats.get(pid)?.startTime !== startTime) continue;
    try {
      process.kill(pid, signal);
    } catch {
      // Gone in the meantime, or not ours: nothing left to stop.
    }
  }
}

export interface SweepOptions extends RunScope {
  /** Time between SIGTERM and SIGKILL; 0 sends SIGKILL at once. */
  readonly graceMs: number;
}

/**
 * Stops every process of a run: SIGTERM, then SIGKILL for whatever is left after the grace
 * time, scanning again until nothing carries the marker (a dying process may fork first).
 * Returns how many processes it signalled.
 */
export async function sweepRunProcesses(marker: Marker, options: SweepOptions): Promise<number> {
  const signalled = new Set<number>();
  let found = await findRunProcesses(marker, options);
  if (options.graceMs > 0 && found.length > 0) {
    found.forEach(({ pid }) => signalled.add(pid));
    await signalProcesses(found, 'SIGTERM');
    const deadline = Date.now() + options.graceMs;
    while (found.length > 0 && Date.now() < deadline) {
      await sleep(50);
      found = await findRunProcesses(marker, options);
    }
  }
  for (let round = 0; round < 50 && found.length > 0; round++) {
    found.forEach(({ pid }) => signalled.add(pid));
    await signalProcesses(found, 'SIGKILL');
    await sleep(20);
    found = await findRunProcesses(marker, options);
  }
  return signalled.size;
}

/** The start time of a live process (in clock ticks since boot), or null when it is gone. */
export function processStartTime(pid: number): Promise<string | null> {
  return Promise.resolve(liveStartTime(pid));
}
