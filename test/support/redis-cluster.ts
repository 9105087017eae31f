import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { findFreePort, spawnRedis } from '../../tools/demo/private-redis.js';

const run = promisify(execFile);

/** Local Redis servers the test run started, stopped for good by `close` (also after a failure). */
export interface RedisGroup {
  /** The REDIS_URL that names them. */
  readonly url: string;
  close(): Promise<void>;
}

export interface RedisCluster extends RedisGroup {
  readonly ports: readonly number[];
}

/** Stops each process (SIGTERM, then SIGKILL if it lingers) and removes the directories. */
async function stopAll(processes: readonly ChildProcess[], dirs: readonly string[]): Promise<void> {
  await Promise.all(
    processes.map(async (proc) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const late = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(late);
    }),
  );
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** Starts one redis-server in a directory of its own, with these arguments (or made from it). */
export type SpawnInGroup = (
  args: string[] | ((dir: string) => string[]),
) => Promise<{ port: number; dir: string }>;

/** Starts processes with `start`, stopping the ones already up when one fails to start. */
export async function startGroup<T>(
  start: (spawn: SpawnInGroup) => Promise<T>,
): Promise<T & { close(): Promise<void> }> {
  const processes: ChildProcess[] = [];
  const dirs: string[] = [];
  const spawn: SpawnInGroup = async (args) => {
    const port = await findFreePort();
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-redis-'));
    dirs.push(dir);
    const given = typeof args === 'function' ? args(dir) : args;
    processes.push(await spawnRedis([...given, '--port', String(port), '--dir', dir], dir));
    return { port, dir };
  };
  const close = (): Promise<void> => stopAll(processes, dirs);
  try {
    return { ...(await start(spawn)), close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** As the tests' single Redis: nothing on disk, and no eviction (it would lose jobs). */
const NODE_ARGS = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'].concat([
  '--maxmemory-policy',
  'noeviction',
]);

/** A Redis Cluster of three masters (no replicas) on free loopback ports, every slot served. */
export async function startRedisCluster(): Promise<RedisCluster> {
  return startGroup(async (spawn) => {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      // The bus port too is a free one, not port + 10000, which may be anybody's.
      const bus = String(await findFreePort());
      const args = [...NODE_ARGS, '--cluster-enabled', 'yes', '--cluster-port', bus];
      ports.push((await spawn([...args, '--cluster-node-timeout', '2000'])).port);
    }
    const nodes = ports.map((port) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-yes']);
    await Promise.all(ports.map((port) => untilClusterOk(port)));
    return { url: `redis+cluster://${nodes.join(',')}`, ports };
  });
}

async function untilClusterOk(port: number): Promise<void> {
  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true });
  try {
    for (let tries = 0; tries < 200; tries++) {
      const info = String(await redis.call('CLUSTER', 'INFO'));
      if (info.includes('cluster_state:ok')) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`the cluster node on port ${port} never reported cluster_state:ok`);
  } finally {
    redis.disconnect();
  }
}
