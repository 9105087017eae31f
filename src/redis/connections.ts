import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { redactIn, redactUrl } from '../config/config.js';
import { parseRedisTarget } from '../config/redis-url.js';
import { errorMessage } from '../common/errors.js';
import { withTimeout } from '../common/time.js';

/**
 * The connections a worker uses, each for one purpose:
 * - `commands`: BullMQ's (it needs maxRetriesPerRequest null) and ours; during an outage its
 *   commands wait for Redis to come back.
 * - `events`: event publishing; commands fail at once during an outage, so the publisher
 *   decides what to buffer instead of ioredis queueing without bound.
 * - `subscriber`: the control channel (a subscribed connection can do nothing else).
 */
export interface WorkerConnections {
  readonly commands: RedisClient;
  readonly events: RedisClient;
  readonly subscriber: RedisClient;
  close(): Promise<void>;
  /** Drops every connection at once: commands waiting for Redis fail instead of waiting on. */
  disconnect(): void;
}

/** One Redis, or a Redis Cluster: BullMQ and every command claudebox sends take either. */
export type RedisClient = Redis | Cluster;

/** Options of one connection; on a cluster, `cluster` adds the Cluster's own. */
export type ConnectOptions = RedisOptions & { readonly cluster?: ClusterOptions };

/**
 * A connection to what REDIS_URL names (see src/config/redis-url.ts): a plain client, a client
 * of the primary Sentinel names (found again after a failover), or a Cluster client.
 */
export function connectRedis(url: string, options: ConnectOptions = {}): RedisClient {
  const { cluster, ...redisOptions } = options;
  const target = parseRedisTarget(url);
  if (target.kind === 'node') return new Redis(url, redisOptions);
  const credentials = {
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
  };
  if (target.kind === 'cluster') {
    return new Cluster([...target.nodes], {
      ...(redisOptions.enableOfflineQueue === undefined
        ? {}
        : { enableOfflineQueue: redisOptions.enableOfflineQueue }),
      ...(redisOptions.lazyConnect === undefined ? {} : { lazyConnect: redisOptions.lazyConnect }),
      ...cluster,
      redisOptions: { ...redisOptions, ...credentials, ...(target.tls ? { tls: {} } : {}) },
    });
  }
  return new Redis({
    ...redisOptions,
    ...credentials,
    sentinels: [...target.sentinels],
    name: target.masterName,
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    ...(target.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
    // A demoted primary keeps its clients connected for a moment and refuses their writes:
    // reconnect (Sentinel names the new primary) and send the command again.
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    failoverDetector: true,
  });
}

/** Whether the address names a Redis Cluster. */
export function isClusterUrl(url: string): boolean {
  return parseRedisTarget(url).kind === 'cluster';
}

/**
 * Another connection to the same Redis with `options` over the original's: a subscriber needs
 * one of its own. A Cluster's `duplicate` takes its nodes first.
 */
export function duplicateConnection(
  redis: RedisClient,
  options: Partial<RedisOptions>,
  cluster: ClusterOptions = {},
): RedisClient {
  if (redis instanceof Cluster) {
    return redis.duplicate([], {
      ...cluster,
      redisOptions: { ...redis.options.redisOptions, ...options },
    });
  }
  return redis.duplicate(options);
}

export function openConnections(url: string, logger: Logger): WorkerConnections {
  const open = (name: string, options: RedisOptions): RedisClient => {
    const redis = connectRedis(url, { connectionName: `claudebox:${name}`, ...options });
    watchConnection(redis, {
      lost: (error) => {
        logger.warn(
          { connection: name, redis: redactUrl(url), err: redactIn(error.message, url) },
          'Redis connection lost; retrying',
        );
      },
      back: () => logger.info({ connection: name }, 'Redis connection back'),
    });
    return redis;
  };
  const commands = open('commands', { maxRetriesPerRequest: null });
  const events = open('events', {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  });
  const subscriber = open('control', { maxRetriesPerRequest: null });
  return {
    commands,
    events,
    subscriber,
    close: async () => {
      await Promise.all([commands, events, subscriber].map((redis) => quit(redis)));
    },
    disconnect: () => {
      for (const redis of [commands, events, subscriber]) redis.disconnect();
    },
  };
}

async function quit(redis: RedisClient): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/**
 * Tells once when a connection is lost and once when it is back, not on every retry
 * (ioredis reports each failed reconnection as an error).
 */
export function watchConnection(
  redis: RedisClient,
  report: { lost(error: Error): void; back?(): void },
): void {
  let down = false;
  redis.on('error', (error: Error) => {
    if (down) return;
    down = true;
    report.lost(error);
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    report.back?.();
  });
}

/** Whether Redis answers at `url` within the time; the reason when it does not. */
export async function probeRedis(url: string, timeoutMs: number): Promise<string | null> {
  const redis = connectRedis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    sentinelRetryStrategy: () => null,
    enableOfflineQueue: false,
    cluster: { clusterRetryStrategy: () => null },
  });
  // ioredis rejects the connect with "Connection is closed."; the error event says why.
  const causes: string[] = [];
  redis.on('error', (error: Error) => causes.push(error.message));
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
    );
    // ioredis goes on in database 0 where Redis refuses the one the address names.
    const { db } = redis.options as RedisOptions;
    if (db) await withTimeout(redis.select(db), timeoutMs);
    return null;
  } catch (error) {
    return causes[0] ?? errorMessage(error);
  } finally {
    redis.disconnect();
  }
}
