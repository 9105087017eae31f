import type { Logger } from 'pino';
import {
  cancelKey,
  storedSessionId,
  withoutOutput,
  type ExecuteResult,
  type RunState,
} from '../../contract/index.js';
import type { ExecuteJob, JobContext } from './context.js';
import type { JobEvents } from '../events/job-events.js';

/**
 * Ends an attempt on the record: its terminal event in Redis first, then the run state (with
 * the result) on the job, then a log line. Only after this may the job's own state change.
 * A successful result becomes the job's return value, so the run state keeps it without its
 * output; a failure's output has no other place on the job. False, with nothing recorded past
 * the events, where the job was `lost` by the time they were written (its lock lapsed while
 * Redis was away, say): another worker may own it.
 */
export async function recordEnd(
  context: JobContext,
  job: ExecuteJob,
  events: JobEvents,
  state: RunState | null,
  result: ExecuteResult,
  log: Logger,
  lost: () => boolean = () => false,
): Promise<boolean> {
  await events.flush();
  if (lost()) return false;
  // A cancel marker is spent once the job's run is over, so a retry from queue tooling can run.
  // While the queue runs it again (a retry, a shutdown, a rate limit), a cancel that came late
  // stays for the next attempt, which then ends as cancelled before it starts.
  if (!result.retrying || result.failure === 'cancelled') {
    await context.redis.del(cancelKey(context.address, result.jobId));
  }
  await job.updateProgress({
    attempt: result.attempt,
    sessionId: state?.sessionId ?? storedSessionId(result.sessionId),
    transcriptBaseline: state?.transcriptBaseline ?? 0,
    ...(state?.forkedAfter === undefined ? {} : { forkedAfter: state.forkedAfter }),
    lastSeq: events.lastSeq,
    pid: null,
    result: result.success ? withoutOutput(result) : result,
    ...(state?.spending === undefined ? {} : { spending: state.spending }),
    ...(state?.rateLimit === undefined ? {} : { rateLimit: state.rateLimit }),
    ...(result.retrying ? {} : { endedAtStall: job.stalledCounter }),
  } satisfies RunState);
  context.onFinished?.(result);
  const fields = {
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    success: result.success,
    failure: result.failure,
    sessionId: result.sessionId,
    lastSeq: result.lastSeq,
    retrying: result.retrying,
  };
  if (result.success) log.info(fields, 'job ended');
  else log.warn({ ...fields, error: result.error }, 'job ended');
  return true;
}
