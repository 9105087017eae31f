import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { LeaseClearing } from '../isolation/index.js';

export interface Watchdog {
  /** Ends the watchdog once the worker's runs are over (it sweeps once more on the way out). */
  stop(): Promise<void>;
}

/** The least time between two watchdogs started after one ended on its own. */
const RESTART_PAUSE_MS = 1000;

/**
 * Starts the watchdog that stops this worker's runs if the worker dies without doing so. Node
 * cannot ask the kernel to kill children when their parent dies; a pipe that closes when the
 * worker's process ends, whatever ended it, is the next best thing. It gets a process group of
 * its own, so a signal to the worker's whole group does not take it along. One that ends
 * before the worker (killed by hand, or by the OOM killer) is said and replaced: it keeps no
 * state, finding the worker's runs by their marker and leases.
 */
export async function startWatchdog(
  workerId: string,
  leases: LeaseClearing | null,
  logger: Logger,
): Promise<Watchdog> {
  let stopping = false;
  // Read through a call: the pause between its two looks lets stop() change it.
  const isStopping = (): boolean => stopping;
  let current = launch(workerId, leases);
  await new Promise<void>((resolve, reject) => {
    current.child.once('spawn', resolve);
    current.child.once('error', (error) =>
      reject(new Error(`could not start the watchdog: ${error.message}`)),
    );
  });
  const replaceWhenEnded = (watchdog: Launched): void => {
    void watchdog.exited.then(async ({ code, signal }) => {
      if (isStopping()) return;
      logger.error(
        { code, signal },
        "the watchdog ended before the worker: starting another, as nothing would stop this worker's runs if it died",
      );
      await new Promise((resolve) => setTimeout(resolve, RESTART_PAUSE_MS).unref());
      if (isStopping()) return;
      current = launch(workerId, leases);
      current.child.once('error', (error) =>
        logger.error({ err: error.message }, 'could not start another watchdog'),
      );
      replaceWhenEnded(current);
    });
  };
  replaceWhenEnded(current);
  return {
    stop: async () => {
      stopping = true;
      current.child.stdin?.end();
      await current.exited;
    },
  };
}

interface Launched {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(workerId: string, leases: LeaseClearing | null): Launched {
  const self = fileURLToPath(import.meta.url);
  // Running from source (tests), the watchdog is TypeScript too and needs tsx to start.
  const fromSource = self.endsWith('.ts');
  const script = fileURLToPath(new URL(fromSource ? './main.ts' : './main.js', import.meta.url));
  const loader = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
  const leaseArgs = leases
    ? [leases.dir, leases.sender.setpriv, leases.sender.shell, leases.workDir, leases.homes]
    : [];
  const child = spawn(process.execPath, [...loader, script, workerId, ...leaseArgs], {
    stdio: ['pipe', 'ignore', 'inherit'],
    detached: true,
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });
  return { child, exited };
}
