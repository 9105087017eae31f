import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A redis-server of one's own on a loopback port, for the demo and the tests. */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  /** Stops the server as a restart would (SIGTERM); `start` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

export const REDIS_INSTALL_HINT =
  'redis-server was not found on PATH: install it (`apt-get install -y redis-server` on ' +
  'Debian/Ubuntu, `brew install redis` on macOS)';

export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read the free port'));
      });
    });
  });
}

/**
 * Starts redis-server on a free port, keeping nothing on disk unless `persistent` (then an
 * append-only file synced on every write keeps the data across stop and start).
 */
export async function startPrivateRedis(
  options: { persistent?: boolean } = {},
): Promise<PrivateRedis> {
  const port = await findFreePort();
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-redis-'));
  const args = [
    ['--port', String(port)],
    ['--bind', '127.0.0.1'],
    ['--save', ''],
    ['--appendonly', options.persistent ? 'yes' : 'no'],
    ['--appendfsync', 'always'],
    ['--dir', dir],
    // BullMQ needs it: an evicted key would be a lost job.
    ['--maxmemory-policy', 'noeviction'],
  ].flat();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = await spawnRedis(args, dir);
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    await exited;
  };

  try {
    await start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** redis-server with these arguments, once it says it is ready (a sentinel says so otherwise). */
export async function spawnRedis(args: string[], dir: string): Promise<ChildProcess> {
  const ready = args.includes('--sentinel') ? 'Sentinel ID is' : 'Ready to accept connections';
  const proc = spawn('redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Says whose it is, in /proc: a leak check can then tell it from anybody else's Redis.
    env: { ...process.env, CLAUDEBOX_PRIVATE_REDIS: dir },
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onOutput = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes(ready)) {
        proc.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null): void => {
      const said = output.trim().split('\n').at(-1) ?? '';
      reject(new Error(`redis-server exited with code ${code} before it was ready: ${said}`));
    };
    proc.stdout.on('data', onOutput);
    proc.stderr.on('data', onOutput);
    proc.once('exit', onExit);
    proc.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new Error(REDIS_INSTALL_HINT) : error);
    });
  });
  return proc;
}
