import { join } from 'node:path';
import { readOrNothing } from '../common/paths.js';

/**
 * The OOM score adjustment of every process of a run: the highest, so that where the host runs
 * out of memory the kernel kills a run's process before the worker, whatever their sizes.
 */
export const RUN_OOM_SCORE_ADJ = 1000;

/** A run's limits as the worker sets them up at start: its launch's commands, and warnings. */
export interface RunLimits {
  readonly argv: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * Sets up the limits of every run (see limitsLauncher); throws where RUN_MAX_PROCESSES cannot
 * work (see checkProcessCap).
 */
export function setUpRunLimits(maxProcesses: number, concurrency: number): RunLimits {
  const ownLimit = ownProcessLimit();
  checkProcessCap(maxProcesses, ownLimit);
  // At 0, the worker's own soft limit, soft and hard: a run could raise an inherited soft limit
  // up to the worker's hard one, past what the senders of its kill start under.
  const argv = limitsLauncher(maxProcesses || (ownLimit ?? 0));
  const warning = pidRoomWarning(concurrency, maxProcesses, pidRoomOfHost(), ownLimit);
  return { argv, warnings: warning === null ? [] : [warning] };
}

/** The shell that sets a run's limits with its builtins. */
export const LIMITS_SHELL = '/bin/sh';

/**
 * What a run's launch starts with, as root, before it becomes the run's uid: a shell that caps
 * the processes and threads of that uid at `maxProcesses` (0: no cap of its own), makes the run
 * the OOM killer's first pick, and execs the rest of the launch. Both are inherited by every
 * process the run starts and by nothing of the worker's: the senders of the kill that ends a run
 * must start whatever the run holds, and a cap of the worker's own would be theirs too. One
 * shell with its builtins, not a tool for each: every exec on the way to the CLI costs a run
 * about a millisecond of CPU. The shell runs as root with the run's environment, whose names
 * only the worker's allow-list and its operator choose, never a job; it drops any function
 * (which bash takes from the environment) standing in for the builtins it uses. Where a limit
 * cannot be set, it says which and exits 126, and the run does not start.
 */
export function limitsLauncher(maxProcesses: number): string[] {
  const failing = (what: string) =>
    `{ echo "claudebox-limits: cannot set ${what}" >&2; exit 126; }`;
  // Without -H or -S, ulimit sets the hard limit as well, which the run cannot raise. bash and
  // ksh name the process limit -u; dash (Debian's /bin/sh) knows no -u and names it -p. unset
  // is a special builtin, which no function can stand in for in a POSIX shell.
  const cap =
    maxProcesses > 0
      ? `if ulimit -u >/dev/null 2>&1; then ulimit -u ${maxProcesses}; else ulimit -p ${maxProcesses}; fi || ${failing(`the run's process limit (RLIMIT_NPROC) to ${maxProcesses}`)}; `
      : '';
  const oom = `echo ${RUN_OOM_SCORE_ADJ} >/proc/self/oom_score_adj || ${failing(`the run's OOM score adjustment to ${RUN_OOM_SCORE_ADJ}`)}; `;
  const script = `unset -f ulimit echo; ${cap}${oom}exec "$@"`;
  return [LIMITS_SHELL, '-c', script, 'claudebox-limits'];
}

/** A limit on the pids (or threads) that processes of the host, or of the worker's cgroup, take. */
export interface PidRoom {
  readonly name: string;
  readonly value: number;
}

/**
 * The limits on pids the worker's runs share with it: kernel.pid_max, kernel.threads-max, and
 * the pids.max of the worker's cgroup (a container's `pids_limit`), where one is set; `read`
 * gives a file's text.
 */
export function pidRoomOfHost(
  read: (path: string) => string | undefined = readOrNothing,
): PidRoom[] {
  const files: [string, string][] = [
    ['kernel.pid_max', '/proc/sys/kernel/pid_max'],
    ['kernel.threads-max', '/proc/sys/kernel/threads-max'],
  ];
  const room = files.flatMap(([name, path]) => positive(read(path), name));
  const cgroup = cgroupPidsMax(read);
  return cgroup === undefined ? room : [...room, cgroup];
}

/**
 * The pids.max of the worker's cgroup: cgroup v1's pids controller where it is mounted, else
 * the unified hierarchy's; at the path /proc/self/cgroup names, or at the mount's top where a
 * container's cgroup is mounted there (no cgroup namespace).
 */
function cgroupPidsMax(read: (path: string) => string | undefined): PidRoom | undefined {
  const cgroups = read('/proc/self/cgroup') ?? '';
  const v1 = /^\d+:((?:[^:,]+,)*pids(?:,[^:,]+)*):(.*)$/m.exec(cgroups);
  const v2 = /^0::(.*)$/m.exec(cgroups);
  const mount = v1 ? join('/sys/fs/cgroup', v1[1] ?? '') : '/sys/fs/cgroup';
  const path = v1 ? v1[2] : v2?.[1];
  if (path === undefined) return undefined;
  const name = "the worker's cgroup's pids.max";
  for (const dir of [join(mount, path), mount]) {
    const text = read(join(dir, 'pids.max'));
    if (text !== undefined) return positive(text, name)[0];
  }
  return undefined;
}

function positive(text: string | undefined, name: string): PidRoom[] {
  const value = Number(text?.trim());
  return Number.isInteger(value) && value > 0 ? [{ name, value }] : [];
}

/** The worker's own RLIMIT_NPROC (its soft limit), from its /proc/self/limits; null: none. */
export function ownProcessLimit(
  read: (path: string) => string | undefined = readOrNothing,
): number | null {
  const soft = /^Max processes\s+(\S+)/m.exec(read('/proc/self/limits') ?? '')?.[1];
  const value = Number(soft);
  return Number.isInteger(value) && value > 0 ? value : null;
}

/**
 * Throws where RUN_MAX_PROCESSES is over the worker's own process limit, which the kill that
 * ends a run starts under: once its uid has set it, a process that becomes the run's uid cannot
 * exec while that uid holds more processes than that limit (and root cannot raise a run's cap
 * past the worker's hard limit without CAP_SYS_RESOURCE). Not an IsolationError: a worker must
 * not go on unisolated.
 */
export function checkProcessCap(maxProcesses: number, ownLimit: number | null): void {
  if (maxProcesses === 0 || ownLimit === null || maxProcesses <= ownLimit) return;
  throw new Error(
    `RUN_MAX_PROCESSES=${maxProcesses} is over the worker's own limit of processes (${ownLimit}, its RLIMIT_NPROC): a run holding more than that would keep the kill that ends it from starting as its uid; lower RUN_MAX_PROCESSES or raise the worker's limit`,
  );
}

/**
 * Why the runs of a worker could together take every pid (or thread) they share with it, or
 * null: `concurrency` runs at `maxProcesses` each, or (0) at the worker's own limit, which they
 * inherit, against the tightest of `room`.
 */
export function pidRoomWarning(
  concurrency: number,
  maxProcesses: number,
  room: readonly PidRoom[],
  ownLimit: number | null,
): string | null {
  const cap = maxProcesses > 0 ? maxProcesses : ownLimit;
  const tightest = [...room].sort((a, b) => a.value - b.value)[0];
  if (cap === null) {
    return 'RUN_MAX_PROCESSES=0 and the worker has no limit of processes: a run may start processes until none is left to start, and then the worker cannot start one either';
  }
  if (tightest === undefined || concurrency * cap < tightest.value) return null;
  const each = maxProcesses > 0 ? `RUN_MAX_PROCESSES=${cap}` : `the worker's own limit of ${cap}`;
  return `CONCURRENCY=${concurrency} runs of ${each} processes each could take every pid the worker has (${tightest.name} is ${tightest.value}), and then the worker could not start one: lower RUN_MAX_PROCESSES`;
}
