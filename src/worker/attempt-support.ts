import type { Logger } from 'pino';
import { cancelKey, type ExecuteResult, type RunState } from '../contract/index.js';
import type { ExecuteJob, JobContext } from './process-job.js';
import type { JobEvents } from './job-events.js';
import type { SessionRef, TranscriptPlace } from './sessions.js';

/**
 * Ends an attempt on the record: its terminal event in Redis first, then the run state (with
 * the result) on the job, then a log line. Only after this may the job's own state change.
 */
export async function recordEnd(
  context: JobContext,
  job: ExecuteJob,
  events: JobEvents,
  state: RunState | null,
  result: ExecuteResult,
  log: Logger,
): Promise<void> {
  await events.flush();
  // A cancel marker is spent once the attempt ended, so a retry from queue tooling can run.
  await context.redis.del(cancelKey(context.address, result.jobId));
  await job.updateProgress({
    attempt: result.attempt,
    sessionId: state?.sessionId ?? result.sessionId,
    transcriptBaseline: state?.transcriptBaseline ?? 0,
    lastSeq: events.lastSeq,
    pid: null,
    result,
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
}

export interface SessionSync {
  /** Stops shipping, after one last ship of whatever the transcript grew by. */
  stop(): Promise<void>;
}

/**
 * Ships the session transcript while the run goes on: every SESSION_SYNC_SECONDS whatever the CLI
 * appended goes to the store, so a worker that dies loses at most that much of the conversation.
 * A transcript past SESSION_MAX_BYTES stops being shipped, with one warning and a note in the
 * attempt's events.
 */
export function startSessionSync(
  context: JobContext,
  ref: SessionRef | null,
  place: TranscriptPlace,
  log: Logger,
  note: (text: string) => void,
): SessionSync | null {
  const { sessions } = context;
  if (!sessions || ref === null) return null;
  const shipper = sessions.shipper(ref, place);
  let warned = false;
  let failing = false;
  const ship = async (): Promise<void> => {
    try {
      await shipper.ship();
      failing = false;
    } catch (error) {
      // One line per outage, not one per tick: the next tick sends what this one could not.
      if (!failing)
        log.warn({ err: error, sessionId: ref.sessionId }, 'could not save the session transcript');
      failing = true;
    }
    if (shipper.stopped !== null && !warned) {
      warned = true;
      const why =
        shipper.stopped === 'oversized'
          ? `the session transcript grew past SESSION_MAX_BYTES (${sessions.maxBytes} bytes): it is no longer saved, and a retry starts a new session`
          : 'another run wrote more of this session than this one has: its transcript is no longer saved';
      log.warn({ sessionId: ref.sessionId }, why);
      note(`claudebox: ${why}`);
    }
  };
  let shipping: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    shipping = shipping.then(ship);
  }, context.settings.sessionSyncMs);
  let stopped: Promise<void> | null = null;
  return {
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await shipping;
        await ship();
      })()),
  };
}
