import type { Logger } from 'pino';
import type { QueueAddress } from '../../contract/index.js';
import type { Isolation } from '../../isolation/index.js';
import type { RedisClient } from '../../redis/connections.js';
import type { WorkerMetrics } from './metrics.js';
import { repeatEvery } from './repeat.js';

export interface ScratchSweepOptions {
  readonly redis: RedisClient;
  readonly address: QueueAddress;
  readonly everyMs: number;
  readonly metrics: WorkerMetrics;
  readonly logger: Logger;
}

/**
 * Sweeps the scratch directories of this queue's jobs now, in the background (the worker needs
 * none of it to start, and Redis may be slow to answer), and then every `everyMs` (see
 * Isolation.sweepScratch); each sweep reports RUN_ROOT's disk use to /metrics. Returns the
 * stop, which waits for a sweep under way.
 */
export function startScratchSweep(
  isolation: Isolation,
  { redis, address, everyMs, metrics, logger }: ScratchSweepOptions,
): () => Promise<void> {
  // A job's key, as the attempt names its scratch directory after: BullMQ's hash of the job.
  const keyPrefix = `${address.prefix}:${address.queueName}:`;
  return repeatEvery(
    async () => {
      try {
        const removed = await isolation.sweepScratch(keyPrefix, (keys) => jobsOver(redis, keys));
        if (removed > 0) {
          logger.info({ removed }, 'removed the scratch directories of jobs that are over or gone');
        }
      } catch (error) {
        logger.warn({ err: error }, 'could not sweep the scratch directories');
      }
      // Measured whether or not Redis answered the sweep.
      await isolation.runDiskUse().then(
        (use) => metrics.runDiskUse(use),
        (error: unknown) =>
          logger.warn({ err: error }, 'could not measure the disk use of RUN_ROOT'),
      );
    },
    everyMs,
    { now: true },
  );
}

/**
 * Whether each job is over: gone from Redis (removed, or past its retention), or moved to
 * completed or failed for good (BullMQ sets `finishedOn` then, never for a retry, and takes it
 * away when a finished job is retried).
 */
async function jobsOver(redis: RedisClient, jobKeys: readonly string[]): Promise<boolean[]> {
  return Promise.all(
    jobKeys.map(async (key) => {
      // `timestamp` is set on every job BullMQ adds: without it, there is no job.
      const [finishedOn, timestamp] = await redis.hmget(key, 'finishedOn', 'timestamp');
      return timestamp === null || finishedOn !== null;
    }),
  );
}
