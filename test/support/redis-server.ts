import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Kills the server (as an outage would); `start` brings it back on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Kills the server for good and removes its directory. */
  close(): Promise<void>;
}

const INSTALL_HINT =
  'redis-server was not found on PATH. The tests start their own Redis server; install it with ' +
  '`apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS).';

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
 * Starts a private redis-server on a free loopback port. With `persistent`, it keeps its data
 * across `stop()` / `start()` (an append-only file synced on every write), as a production
 * Redis would across a restart.
 */
export async function startRedisServer(
  options: { persistent?: boolean } = {},
): Promise<RedisServer> {
  const port = await findFreePort();
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-redis-'));
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        options.persistent ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--dir',
        dir,
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let output = '';
    proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      proc.once('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ENOENT' ? new Error(INSTALL_HINT) : error);
      });
      proc.once('exit', (code) => {
        reject(new Error(`redis-server exited with code ${code} before it was ready:\n${output}`));
      });
      const poll = setInterval(() => {
        if (output.includes('Ready to accept connections')) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    proc.removeAllListeners('exit');
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => {
        resolve();
      });
      // SIGTERM: Redis finishes its append-only file, then exits (as a restart would).
      proc.kill('SIGTERM');
    });
  };

  await launch();
  const url = `redis://127.0.0.1:${port}`;
  return {
    url,
    port,
    stop,
    start: launch,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A plain ioredis client for assertions, closed by the caller. */
export function connectRedis(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}
