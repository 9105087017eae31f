import type { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { doneWithin } from '../../common/time.js';
import type { WorkerConnections } from '../../redis/connections.js';
import type { ActiveRuns } from '../attempt/active-runs.js';
import type { Closers } from './closers.js';

/** What a shutdown stops: the runs, the BullMQ worker, and the Redis connections under it. */
interface Consumer {
  readonly runs: ActiveRuns;
  readonly worker: Pick<Worker, 'close' | 'disconnect'>;
  readonly connections: Pick<WorkerConnections, 'disconnect'>;
}

/**
 * How long the consumer may take to close once no run is left, or once stopped runs had this
 * long to end past the grace time and their KILL_GRACE_SECONDS. Past it the close is waiting on
 * Redis, which is away: BullMQ retries its commands until Redis answers, and a worker must stop
 * all the same.
 */
const CLOSE_WAIT_MS = 5000;
/** What the close then gets, its connections dropped: what can still end, ends at once. */
const DROPPED_WAIT_MS = 1000;
const POLL_MS = 100;

/**
 * Stops taking jobs, lets active runs finish for the grace time, then stops them (their jobs go
 * back to the queue) and closes everything, last started first. A second call joins the first,
 * and with a grace time of 0 stops the runs at once.
 */
export function shutdownOf(
  parts: Consumer,
  closers: Closers,
  logger: Logger,
  /** What a stopped run's CLI gets to end before it is killed: its job is requeued after. */
  killGraceMs: number,
): (graceMs: number) => Promise<void> {
  const { runs } = parts;
  let shuttingDown: Promise<void> | null = null;
  let grace: NodeJS.Timeout | undefined;
  const stopRuns = (): void => {
    clearTimeout(grace);
    if (runs.size > 0)
      logger.warn({ jobIds: runs.ids() }, 'stopping runs and requeueing their jobs');
    // Also stops a run that begins from now on (a job fetched just as the shutdown began).
    runs.stopAll({
      cause: 'shutdown',
      message: 'the worker shut down; the job went back to the queue',
    });
  };
  return (graceMs) => {
    if (shuttingDown) {
      if (graceMs === 0) stopRuns();
      return shuttingDown;
    }
    logger.info({ activeRuns: runs.size, graceMs }, 'shutting down: no new jobs');
    grace = setTimeout(stopRuns, graceMs);
    shuttingDown = (async () => {
      const deadlineMs = graceMs + killGraceMs + CLOSE_WAIT_MS;
      const answered = await closeConsumer(parts, deadlineMs, logger);
      clearTimeout(grace);
      await closers.closeAll(logger, !answered);
      logger.info('worker stopped');
    })();
    return shuttingDown;
  };
}

/**
 * Closes the BullMQ worker: it waits for the active jobs, then for its own commands. When that
 * takes longer than CLOSE_WAIT_MS with no run left, or than `deadlineMs` in all, Redis is not
 * answering: the connections are dropped, which fails what waits on them, and the close ends.
 * Says whether Redis answered.
 */
async function closeConsumer(
  { worker, runs, connections }: Consumer,
  deadlineMs: number,
  logger: Logger,
): Promise<boolean> {
  const closed = worker.close().catch((error: unknown) => {
    logger.warn({ err: error }, 'the queue consumer did not close cleanly');
  });
  let waited = 0;
  let idle = 0;
  while (!(await doneWithin(closed, POLL_MS))) {
    waited += POLL_MS;
    idle = runs.size === 0 ? idle + POLL_MS : 0;
    if (idle < CLOSE_WAIT_MS && waited < deadlineMs) continue;
    logger.warn('Redis does not answer: the worker stops without it');
    connections.disconnect();
    // BullMQ's own blocking connection too; its disconnect waits for an end that may not come.
    await doneWithin(worker.disconnect(), DROPPED_WAIT_MS);
    await doneWithin(closed, DROPPED_WAIT_MS);
    return false;
  }
  return true;
}
