import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { QueueAddress } from '../contract/index.js';

/** Where a queue is: a connection to use, or a URL to connect to, and the queue's address. */
export interface QueueTarget {
  /** An ioredis connection to use (not closed here), or... */
  readonly connection?: Redis;
  /** ...a Redis URL to connect to. Default redis://127.0.0.1:6379. */
  readonly url?: string;
  /** Default "claudebox", as the worker's QUEUE_NAME. */
  readonly queueName?: string;
  /** BullMQ's key prefix, as the worker's QUEUE_PREFIX. Default "bull". */
  readonly prefix?: string;
}

export interface QueueConnection {
  readonly address: QueueAddress;
  readonly redis: Redis;
  readonly queue: Queue;
  /** Closes the queue, and the Redis connection where it was made here. */
  close(): Promise<void>;
}

/**
 * The queue the target names, on its connection or a new one. Connection trouble goes to
 * `onError` (both reconnect by themselves meanwhile).
 */
export function openQueue(target: QueueTarget, onError: (error: Error) => void): QueueConnection {
  const address: QueueAddress = {
    prefix: target.prefix ?? 'bull',
    queueName: target.queueName ?? 'claudebox',
  };
  const owned = target.connection === undefined;
  const redis =
    target.connection ??
    new Redis(target.url ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  // The meta (the cap of BullMQ's event stream among it) is the worker's to write: a queue
  // opened here would reset that cap to BullMQ's default.
  const queue = new Queue(address.queueName, {
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
      await queue.close();
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
