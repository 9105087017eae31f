import type { RedisClient } from '../../redis/connections.js';
import type { Logger } from 'pino';
import { CancelMessageSchema, controlChannel, type QueueAddress } from '../../contract/index.js';
import { readCancelReason } from '../../redis/cancel-marker.js';
import { sendSubscription } from '../../redis/subscribe.js';
import type { ActiveRuns } from '../attempt/active-runs.js';

/**
 * Cancellation from any process: clients publish on the queue's control channel and every
 * worker hears it; the one running the job stops it. The marker key the client leaves is the
 * authority: it is read when a job starts and after the subscriber reconnects (so a message
 * missed during a blip is not a cancel missed), and a message without one is ignored (it came
 * from a deployment with another QUEUE_PREFIX, whose job ids may be the same as ours).
 */
export async function listenForCancels(options: {
  readonly subscriber: RedisClient;
  readonly redis: RedisClient;
  readonly address: QueueAddress;
  readonly runs: ActiveRuns;
  readonly logger: Logger;
}): Promise<{ close(): Promise<void> }> {
  const { subscriber, redis, address, runs, logger } = options;
  const channel = controlChannel(address.queueName);

  const cancelIfMarked = async (jobId: string): Promise<void> => {
    if (!runs.has(jobId)) return;
    const reason = await readCancelReason(redis, address, jobId);
    if (reason !== null && runs.stop(jobId, { cause: 'cancelled', message: reason })) {
      logger.info({ jobId, reason }, 'cancelling job');
    }
  };
  const check = (jobIds: readonly string[]): void => {
    Promise.all(jobIds.map(cancelIfMarked)).catch((error: unknown) => {
      logger.warn({ err: error }, 'could not check cancel markers');
    });
  };
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel) return;
    let parsed;
    try {
      parsed = CancelMessageSchema.safeParse(JSON.parse(message));
    } catch {
      parsed = null;
    }
    if (!parsed?.success) {
      logger.warn({ message: message.slice(0, 200) }, 'ignored a malformed control message');
      return;
    }
    check([parsed.data.jobId]);
  });
  // ioredis subscribes again by itself after a reconnect; what was said meanwhile is in markers.
  const onReady = (): void => check(runs.ids());
  await sendSubscription(subscriber, 'subscribe', channel);
  subscriber.on('ready', onReady);
  return {
    close: async () => {
      subscriber.off('ready', onReady);
      await sendSubscription(subscriber, 'unsubscribe', channel).catch(() => undefined);
    },
  };
}
