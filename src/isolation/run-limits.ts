import { readFileSync } from 'node:fs';
import { searchPath } from '../executor/index.js';
import { IsolationError } from './errors.js';
import { readSysctl } from './host-settings.js';

/**
 * The OOM score adjustment of every process of a run: the highest, so that where the host runs
 * out of memory the kernel kills a run's process before the worker, whatever their sizes.
 */
export const RUN_OOM_SCORE_ADJ = 1000;

/**
 * The commands a run's launch starts with, as root, before it becomes the run's uid: prlimit
 * caps the processes and threads of that uid (RUN_MAX_PROCESSES; 0: no cap) and choom makes
 * the run the OOM killer's first pick. Both are inherited by every process the run starts and
 * by nothing of the worker's: the senders of the kill that ends a run must start whatever the
 * run holds, and a cap of the worker's own would be theirs too.
 */
export async function limitsLauncher(
  maxProcesses: number,
  path: string | undefined,
): Promise<string[]> {
  const [prlimit, choom] = await Promise.all([
    searchPath('prlimit', path),
    searchPath('choom', path),
  ]);
  if (prlimit === null) throw new IsolationError('prlimit is not on PATH (install util-linux)');
  if (choom === null) throw new IsolationError('choom is not on PATH (install util-linux)');
  const cap = maxProcesses > 0 ? [prlimit, `--nproc=${maxProcesses}:${maxProcesses}`, '--'] : [];
  return [...cap, choom, '-n', String(RUN_OOM_SCORE_ADJ), '--'];
}

/**
 * Why the runs of a worker could together take every pid (or thread) the host has, or null:
 * `concurrency` runs at `maxProcesses` each (0: no cap), against kernel.pid_max and
 * kernel.threads-max as `read` gives them.
 */
export function pidRoomWarning(
  concurrency: number,
  maxProcesses: number,
  read: (name: string) => string | undefined = readSysctl,
): string | null {
  if (maxProcesses === 0) {
    return 'RUN_MAX_PROCESSES=0: a run may start processes until the host has no pid left, and then the worker cannot start one either';
  }
  const room = ['kernel.pid_max', 'kernel.threads-max'].flatMap((name) => {
    const value = Number(read(name));
    return Number.isInteger(value) && value > 0 ? [{ name, value }] : [];
  });
  const tightest = room.sort((a, b) => a.value - b.value)[0];
  if (tightest === undefined || concurrency * maxProcesses < tightest.value) return null;
  return `CONCURRENCY=${concurrency} runs of RUN_MAX_PROCESSES=${maxProcesses} processes each could take every pid of the host (${tightest.name} is ${tightest.value}), and then the worker could not start one: lower RUN_MAX_PROCESSES`;
}

/** CAP_SYS_RESOURCE's bit in a capability set. */
const CAP_SYS_RESOURCE = 24;

/**
 * Why a run could make itself no likelier a pick of the OOM killer than the worker, or null:
 * `status` is the worker's /proc/self/status. The floor a process may lower its OOM score
 * adjustment to without CAP_SYS_RESOURCE is set only by a writer that has it: without it, what
 * choom gives a run, the run's processes can take back down to the worker's.
 */
export function oomFloorWarning(status: string = readStatus()): string | null {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (effective === undefined) return null;
  if ((BigInt(`0x${effective}`) >> BigInt(CAP_SYS_RESOURCE)) & 1n) return null;
  return "the worker lacks CAP_SYS_RESOURCE: a run's processes can lower their OOM score adjustment back to the worker's, and where memory runs out the kernel then picks by size, the worker too (add the capability; see docs/security.md)";
}

function readStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}
