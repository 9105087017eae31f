import type { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { ActiveRuns } from '../attempt/active-runs.js';

/**
 * Stops the runs whose job lock this worker no longer holds, so that no job runs twice: when
 * BullMQ says a renewal failed, and when the worker could not renew a lock for its whole
 * duration (cut off from Redis, it would not even hear that another worker took the job over).
 * Returns what stops the watching.
 */
export function watchLocks(
  worker: Worker,
  runs: ActiveRuns,
  lockMs: number,
  logger: Logger,
): () => void {
  const abandon = (jobIds: readonly string[], message: string): void => {
    // Said once a run: BullMQ tells of a failed renewal at each try, all through an outage.
    for (const jobId of jobIds.filter((id) => runs.has(id) && !runs.stopping(id))) {
      logger.warn({ jobId, reason: message }, 'stopping a run whose job is no longer ours');
      runs.stop(jobId, { cause: 'abandoned', message });
    }
  };
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    abandon(jobIds, 'the job lock was lost to another worker');
  });
  worker.on('locksRenewed', ({ jobIds }: { jobIds: string[] }) => runs.lockRenewed(jobIds));
  const timer = setInterval(() => {
    abandon(runs.unlocked(lockMs), `the job lock could not be renewed for ${lockMs / 1000}s`);
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}
