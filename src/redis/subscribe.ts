import type { RedisClient } from './connections.js';

export type SubscribeCommand = 'subscribe' | 'ssubscribe' | 'unsubscribe' | 'sunsubscribe';

/**
 * Sends a (un)subscription for `channel` once the connection may take it, and resolves with
 * Redis's answer.
 *
 * While ioredis is still greeting a new connection (status `connect`: CLIENT SETINFO, then the
 * ready check's INFO), it writes a SUBSCRIBE at once instead of queueing it. Redis then refuses
 * the INFO on a subscribed connection, ioredis drops the connection as failed, and the one it
 * connects again is subscribed to nothing, silently (ioredis 5.11). So in that state the command
 * waits for the connection to be ready (or lost, when ioredis queues it until it is back).
 * Calls made one after another go out in that order.
 */
export async function sendSubscription(
  redis: RedisClient,
  command: SubscribeCommand,
  channel: string,
): Promise<unknown> {
  while (redis.status === 'connect') await nextStatus(redis);
  return redis[command](channel);
}

function nextStatus(redis: RedisClient): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      redis.off('ready', done);
      redis.off('close', done);
      resolve();
    };
    redis.on('ready', done);
    redis.on('close', done);
  });
}
