import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  waitForLog(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * `claudebox worker` as its own process, from the build as `npm start` runs it (the global
 * setup builds it first). Its environment is only what the test gives plus PATH and a private
 * HOME.
 */
export function spawnWorkerProcess(
  env: Record<string, string>,
  options: { readonly uid?: number } = {},
): WorkerProcess {
  const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'worker'], {
    cwd: root,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: mkdtempSync(join(tmpdir(), 'claudebox-home-')),
      HEALTH_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) =>
    stderr.push(...chunk.toString().split('\n').filter(Boolean)),
  );
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    child,
    pid: child.pid ?? 0,
    logs,
    stderr,
    exited,
    async waitForLog(message, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = logs.find((log) => log.msg === message);
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(
            `no "${message}" log line from the worker; stderr: ${stderr.join('\n')}; logs: ${JSON.stringify(logs.slice(-5))}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}
