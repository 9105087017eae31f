import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { redactIn, redactUrl } from '../config/config.js';
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
  readonly commands: Redis;
  readonly events: Redis;
  readonly subscriber: Redis;
  close(): Promise<void>;
}

export function openConnections(url: string, logger: Logger): WorkerConnections {
  const open = (name: string, options: RedisOptions): Redis => {
    const redis = new Redis(url, { connectionName: `claudebox:${name}`, ...options });
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
  };
}

async function quit(redis: Redis): Promise<void> {
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
  redis: Redis,
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
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis rejects the connect with "Connection is closed."; the error event says why.
  const causes: string[] = [];
  redis.on('error', (error: Error) => causes.push(error.message));
  try {
    await withTimeout(
      redis.connect().then(() => redis.ping()),
      timeoutMs,
    );
    return null;
  } catch (error) {
    return causes[0] ?? errorMessage(error);
  } finally {
    redis.disconnect();
  }
}
