import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startGroup, type RedisGroup } from './redis-cluster.js';

export const MASTER_NAME = 'claudebox-test';

export interface RedisSentinel extends RedisGroup {
  /** The sentinel's port. */
  readonly sentinelPort: number;
  /** The port of the primary now, as the sentinel says. */
  primaryPort(): Promise<number>;
  /** Has the sentinel hand the primary's role to the replica, and waits until it says it did. */
  failover(): Promise<void>;
}

/**
 * A primary, its replica and one sentinel watching them (quorum 1), on free loopback ports;
 * the sentinel gives up on an unreachable primary after a second, so failovers take seconds.
 */
export async function startRedisSentinel(): Promise<RedisSentinel> {
  return startGroup(async (spawn) => {
    const node = ['--bind', '127.0.0.1', '--save', '', '--maxmemory-policy', 'noeviction'];
    const primary = await spawn(node);
    const replica = await spawn([...node, '--replicaof', '127.0.0.1', String(primary.port)]);
    // A replica the sentinel first sees out of sync is not promoted until its next look (10 s).
    await withRedis(replica.port, (redis) =>
      until('the replica to sync', async () =>
        (await redis.info('replication')).includes('master_link_status:up'),
      ),
    );
    // A sentinel needs a config file it can rewrite; what it monitors is set at run time.
    const sentinel = await spawn((dir) => {
      const file = join(dir, 'sentinel.conf');
      writeFileSync(file, '');
      return [file, '--sentinel', '--bind', '127.0.0.1'];
    });
    const ask = new Redis(sentinel.port, '127.0.0.1', { lazyConnect: true });
    try {
      await configure(ask, primary.port);
      await until('the sentinel to see the replica in sync', async () => {
        const replicas = (await ask.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as string[][];
        return replicas.some((fields) => fields.join(' ').includes('master-link-status ok'));
      });
    } finally {
      ask.disconnect();
    }
    return {
      url: `redis+sentinel://127.0.0.1:${sentinel.port}/${MASTER_NAME}`,
      sentinelPort: sentinel.port,
      primaryPort: () => withRedis(sentinel.port, primaryPortOf),
      failover: () =>
        withRedis(sentinel.port, async (redis) => {
          const before = await primaryPortOf(redis);
          await redis.call('SENTINEL', 'FAILOVER', MASTER_NAME);
          await until('the failover', async () => (await primaryPortOf(redis)) !== before);
        }),
    };
  });
}

async function configure(sentinel: Redis, primaryPort: number): Promise<void> {
  await sentinel.call('SENTINEL', 'MONITOR', MASTER_NAME, '127.0.0.1', String(primaryPort), '1');
  for (const [option, value] of [
    ['down-after-milliseconds', '1000'],
    ['failover-timeout', '3000'],
  ] as const) {
    await sentinel.call('SENTINEL', 'SET', MASTER_NAME, option, value);
  }
}

async function primaryPortOf(sentinel: Redis): Promise<number> {
  const address = (await sentinel.call(
    'SENTINEL',
    'GET-MASTER-ADDR-BY-NAME',
    MASTER_NAME,
  )) as string[];
  return Number(address[1]);
}

async function withRedis<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true });
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 300; tries++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
