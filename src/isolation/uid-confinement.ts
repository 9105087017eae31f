import { readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  findProcessesOfUid,
  signalProcesses,
  type Confinement,
  type ProcessRef,
} from '../executor/index.js';
import { becomeUid, signalUid } from './tools.js';

export interface UidConfinementOptions {
  readonly uid: number;
  readonly setpriv: string;
  /** bwrap and its arguments up to the command, when the run gets namespaces of its own. */
  readonly sandbox: readonly string[] | null;
}

/**
 * A run confined to a uid of its own (and, where the kernel allows, to PID, IPC and mount
 * namespaces of its own): the worker starts `[bwrap ...] setpriv <uid> -- claude ...` and knows
 * every process of the run by its uid.
 */
export function uidConfinement(options: UidConfinementOptions): Confinement {
  const { uid, setpriv, sandbox } = options;
  // Set when a sweep left no process of the uid: none can appear until the worker launches one
  // (only root starts processes as another uid), so closing the box need not look again.
  let clean = false;
  const find = (launched?: number): Promise<ProcessRef[]> => findProcessesOfUid(uid, launched);
  const cli = async (launched: number): Promise<number | null> => {
    if (sandbox === null) return launched;
    const own = (await findProcessesOfUid(uid)).sort(
      (a, b) => Number(a.startTime) - Number(b.startTime),
    );
    return own[0]?.pid ?? null;
  };
  return {
    command: (bin, args) => {
      clean = false;
      const chain = [setpriv, ...becomeUid(uid), bin, ...args];
      return sandbox === null
        ? { file: setpriv, args: chain.slice(1) }
        : { file: sandbox[0] as string, args: [...sandbox.slice(1), ...chain] };
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
        }),
    sweep: async (launched, graceMs) => {
      if (clean) return 0;
      let found = await find(launched);
      const count = found.length;
      clean = count === 0;
      if (clean) return 0;
      if (graceMs > 0) {
        await signalUid(setpriv, uid, 'TERM');
        const deadline = Date.now() + graceMs;
        while (found.length > 0 && Date.now() < deadline) {
          await sleep(50);
          found = await find(launched);
        }
      }
      for (let round = 0; round < 50 && found.length > 0; round++) {
        await signalUid(setpriv, uid, 'KILL');
        // The sandbox's own processes are root's: the worker, their parent, stops them itself.
        await signalProcesses(found, 'SIGKILL');
        await sleep(20);
        found = await find(launched);
      }
      clean = found.length === 0;
      return count;
    },
  };
}
