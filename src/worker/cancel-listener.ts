import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  cancelKey,
  CancelMarkerSchema,
  CancelMessageSchema,
  controlChannel,
  type QueueAddress,
} from '../contract/index.js';
import type { ActiveRuns } from './active-runs.js';

/**
 * Cancellation from any process: clients publish on the queue's control channel and every
 * worker hears it; the one running the job stops it. A marker key is left as well, read when
 * a job starts and after the subscriber reconnects, so a message missed during a blip is not
 * a cancel missed.
 */
export async function listenForCancels(options: {
  readonly subscriber: Redis;
  readonly redis: Redis;
  readonly address: QueueAddress;
  readonly runs: ActiveRuns;
  readonly logger: Logger;
}): Promise<{ close(): Promise<void> }> {
  const { subscriber, redis, address, runs, logger } = options;
  const channel = controlChannel(address.queueName);

  const cancel = (jobId: string, reason: string): void => {
    if (runs.stop(jobId, { cause: 'cancelled', message: reason })) {
      logger.info({ jobId, reason }, 'cancelling job');
    }
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
    cancel(parsed.data.jobId, parsed.data.reason);
  });
  const recheck = async (): Promise<void> => {
    for (const jobId of runs.ids()) {
      const raw = await redis.get(cancelKey(address, jobId));
      if (raw === null) continue;
      const marker = CancelMarkerSchema.safeParse(safeJson(raw));
      cancel(jobId, marker.success ? marker.data.reason : raw);
    }
  };
  // ioredis subscribes again by itself after a reconnect; what was said meanwhile is in markers.
  const onReady = (): void => {
    recheck().catch((error: unknown) =>
      logger.warn({ err: error }, 'could not check cancel markers'),
    );
  };
  await subscriber.subscribe(channel);
  subscriber.on('ready', onReady);
  return {
    close: async () => {
      subscriber.off('ready', onReady);
      await subscriber.unsubscribe(channel).catch(() => undefined);
    },
  };
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
