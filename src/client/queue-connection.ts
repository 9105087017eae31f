import type { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { queueHashTag, type PubSubMode, type QueueAddress } from '../contract/index.js';
import { doneWithin } from '../common/time.js';
import { connectRedis, isClusterUrl, type RedisClient } from '../redis/connections.js';
import { ReadableQueue } from '../redis/readable-job.js';

/** Where a queue is: a connection to use, or a URL to connect to, and the queue's address. */
export interface QueueTarget {
  /** An ioredis connection (a `Redis` or a `Cluster`) to use (not closed here), or... */
  readonly connection?: RedisClient;
  /**
   * ...an address to connect to, in any form the worker's REDIS_URL takes (`redis://`,
   * `redis+cluster://`, `redis+sentinel://`). Default redis://127.0.0.1:6379.
   */
  readonly url?: string;
  /** Default "claudebox", as the worker's QUEUE_NAME. */
  readonly queueName?: string;
  /** BullMQ's key prefix, as the worker's QUEUE_PREFIX. Default "bull". */
  readonly prefix?: string;
  /** How the workers publish live events, as their EVENTS_PUBSUB. Default "plain". */
  readonly pubsub?: PubSubMode;
}

export interface QueueConnection {
  readonly address: QueueAddress;
  readonly redis: RedisClient;
  readonly queue: Queue;
  /**
   * Closes the queue, and the Redis connection where it was made here: gracefully where Redis
   * answers within CLOSE_WAIT_MS, else at once (commands waiting for a Redis that is away would
   * hold a graceful close for as long as it is).
   */
  close(): Promise<void>;
}

/** How long a close waits for Redis to answer before it lets go of the connection at once. */
const CLOSE_WAIT_MS = 2000;

/**
 * The queue the target names, on its connection or a new one. Connection trouble goes to
 * `onError` (both reconnect by themselves meanwhile).
 */
export function openQueue(
  target: QueueTarget,
  onError: (error: Error) => void,
  /**
   * How many reconnections a command waits through before it fails, on a connection made here:
   * by default it waits for Redis however long it is away, as a control plane's enqueue should.
   */
  retriesPerCommand: number | null = null,
): QueueConnection {
  const address: QueueAddress = {
    prefix: target.prefix ?? 'bull',
    queueName: target.queueName ?? 'claudebox',
  };
  const url = target.url ?? 'redis://127.0.0.1:6379';
  const onCluster =
    target.connection === undefined ? isClusterUrl(url) : target.connection instanceof Cluster;
  if (onCluster && queueHashTag(address) === null) {
    throw new TypeError(
      `prefix ${JSON.stringify(address.prefix)} with queueName ${JSON.stringify(address.queueName)} has no hash tag: on a Redis Cluster every key of a queue must be in one hash slot; use a prefix such as "{claudebox}", as the workers' QUEUE_PREFIX`,
    );
  }
  const owned = target.connection === undefined;
  const redis = target.connection ?? connectRedis(url, { maxRetriesPerRequest: retriesPerCommand });
  // The meta (the cap of BullMQ's event stream among it) is the worker's to write: a queue
  // opened here would reset that cap to BullMQ's default.
  const queue = new ReadableQueue(address.queueName, {
    connection: redis,
    prefix: address.prefix,
    skipMetasUpdate: true,
  });
  queue.on('error', onError);
  if (owned) redis.on('error', onError);
  return {
    address,
    redis,
    queue,
    close: async () => {
      const closing = queue.close();
      if (!owned) {
        await doneWithin(closing, CLOSE_WAIT_MS);
        return;
      }
      const quit = closing.then(() => redis.quit());
      if (!(await doneWithin(quit, CLOSE_WAIT_MS))) redis.disconnect();
    },
  };
}
