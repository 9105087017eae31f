import type { Logger } from 'pino';
import { cancelKey, type ExecuteResult, type RunState } from '../contract/index.js';
import type { ExecuteJob, JobContext } from './process-job.js';
import type { JobEvents } from './job-events.js';
import type { TranscriptPlace } from './sessions.js';

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
  /** Stops the periodic saves and saves once more. */
  stop(): Promise<void>;
}

/** Keeps the session transcript in Redis while the run goes on, and once more at its end. */
export function startSessionSync(
  context: JobContext,
  sessionId: string | null,
  place: TranscriptPlace,
  log: Logger,
): SessionSync | null {
  const { sessions } = context;
  if (!sessions || sessionId === null) return null;
  const save = async (): Promise<void> => {
    try {
      await sessions.save(sessionId, place);
    } catch (error) {
      log.warn({ err: error, sessionId }, 'could not save the session transcript to Redis');
    }
  };
  let saving: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    saving = saving.then(save);
  }, context.settings.sessionSyncMs);
  let stopped: Promise<void> | null = null;
  return {
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await saving;
        await save();
        sessions.forget(sessionId);
      })()),
  };
}
