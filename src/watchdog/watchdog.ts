import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LeaseClearing } from '../isolation/index.js';

export interface Watchdog {
  /** Ends the watchdog once the worker's runs are over (it sweeps once more on the way out). */
  stop(): Promise<void>;
}

/**
 * Starts the watchdog that stops this worker's runs if the worker dies without doing so. Node
 * cannot ask the kernel to kill children when their parent dies; a pipe that closes when the
 * worker's process ends, whatever ended it, is the next best thing. It gets a process group of
 * its own, so a signal to the worker's whole group does not take it along.
 */
export async function startWatchdog(
  workerId: string,
  leases: LeaseClearing | null,
): Promise<Watchdog> {
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
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) =>
      reject(new Error(`could not start the watchdog: ${error.message}`)),
    );
  });
  return {
    stop: async () => {
      child.stdin.end();
      await exited;
    },
  };
}
