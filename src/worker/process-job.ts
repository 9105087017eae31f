import { randomUUID } from 'node:crypto';
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  cancelKey,
  CancelMarkerSchema,
  isTerminalEvent,
  readRunState,
  resultWithoutRun,
  type ExecuteResult,
  type QueueAddress,
  type RunState,
} from '../contract/index.js';
import {
  buildArgs,
  buildChildEnv,
  judgeRun,
  oneLine,
  RUN_MARKER,
  runClaude,
  type StopRequest,
} from '../executor/index.js';
import { readLastEvent } from '../history/history.js';
import type { ActiveRuns } from './active-runs.js';
import type { EventPublisher, JobEvents } from './publisher.js';
import { planAttempt } from './session-plan.js';
import type { SessionStore } from './sessions.js';
import { validateJob } from './validate-job.js';

export interface JobSettings {
  /** WORK_DIR, as a real path. */
  readonly workDir: string;
  readonly defaultTimeoutSeconds: number;
  readonly maxOutputBytes: number;
  readonly maxPromptBytes: number;
  readonly maxLineBytes: number;
  readonly killGraceMs: number;
  readonly sessionSyncMs: number;
  readonly eventsTtlSeconds: number;
  /** Names of extra variables the CLI gets besides the built-in allow-list (CLAUDE_ENV). */
  readonly extraEnv: readonly string[];
}

/** What processing a job needs, handed in so tests can use real parts of their own choosing. */
export interface JobContext {
  readonly settings: JobSettings;
  readonly claudeBin: string;
  readonly workerId: string;
  /** The environment the CLI's allow-listed one is taken from (the worker's own). */
  readonly envSource: Readonly<Record<string, string | undefined>>;
  readonly redis: Redis;
  readonly address: QueueAddress;
  readonly publisher: EventPublisher;
  readonly sessions: SessionStore | null;
  readonly runs: ActiveRuns;
  readonly logger: Logger;
  readonly now: () => number;
  readonly onFinished?: (result: ExecuteResult) => void;
}

export type ExecuteJob = Job<unknown, ExecuteResult>;

/**
 * The BullMQ processor: one attempt of an execute job. It declares the third `signal`
 * parameter so that BullMQ passes one (Worker#cancelJob reaches the run through it).
 */
export function createProcessor(context: JobContext) {
  return (job: ExecuteJob, token?: string, signal?: AbortSignal): Promise<ExecuteResult> =>
    processJob(context, job, token, signal);
}

async function processJob(
  context: JobContext,
  job: ExecuteJob,
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ExecuteResult> {
  const { redis, address, publisher, runs, settings, now } = context;
  const jobId = job.id ?? '';
  const startedAt = now();
  const prior = readRunState(job.progress);
  const attempt = Math.max(job.attemptsStarted, (prior?.attempt ?? 0) + 1);
  const last = await readLastEvent(redis, address, jobId);
  const nextSeq = Math.max(last?.seq ?? 0, prior?.lastSeq ?? 0) + 1;
  const events = publisher.open(jobId, attempt, nextSeq, retention(job.data, settings));
  const log = context.logger.child({ jobId, attempt });
  const stop = runs.begin(jobId);
  const onBullCancel = (): void => {
    runs.stop(jobId, { cause: 'cancelled', message: describe(signal?.reason) });
  };
  signal?.addEventListener('abort', onBullCancel, { once: true });
  let abandoned = false;

  try {
    // The attempt before this one never said how it ended: its worker died or lost the job.
    if (last && !isTerminalEvent(last) && last.attempt < attempt) {
      events.terminal(
        'failed',
        resultWithoutRun({
          jobId,
          attempt: last.attempt,
          failure: 'abandoned',
          error: `attempt ${last.attempt} was abandoned: its worker stopped or lost the job before the run ended`,
          sessionId: prior?.sessionId ?? null,
          retrying: true,
          startedAt,
        }),
        last.attempt,
      );
    }

    const failEarly = async (
      failure: 'cancelled' | 'invalid-request',
      error: string,
    ): Promise<never> => {
      const result = events.terminal(
        'failed',
        resultWithoutRun({
          jobId,
          attempt,
          failure,
          error,
          sessionId: prior?.sessionId ?? null,
          retrying: false,
          startedAt,
        }),
      );
      await finish(context, job, events, prior, result, log);
      throw new UnrecoverableError(error);
    };

    const cancelled = await readCancelReason(redis, address, jobId);
    if (cancelled !== null)
      return await failEarly('cancelled', `cancelled before it started: ${cancelled}`);

    const valid = await validateJob(job.data, settings);
    if (!valid.ok) return await failEarly('invalid-request', `invalid job data: ${valid.reason}`);
    const { request, cwd } = valid;

    const plan = await planAttempt(request, prior, context.sessions);
    const state: RunState = {
      attempt,
      sessionId: plan.sessionId,
      transcriptBaseline: plan.transcriptBaseline,
      lastSeq: events.lastSeq,
      pid: null,
      result: prior?.result ?? null,
    };
    // Recorded before the CLI starts, so a retry after a crash continues this very session.
    await job.updateProgress(state);
    if (stop.aborted) {
      const reason = stop.reason as StopRequest;
      if (reason.cause === 'cancelled')
        return await failEarly('cancelled', `cancelled: ${reason.message}`);
    }

    const runId = randomUUID();
    const args = buildArgs(request, plan.session);
    const timeoutMs = (request.timeout ?? settings.defaultTimeoutSeconds) * 1000;
    const sync = plan.sessionId !== null ? startSessionSync(context, plan.sessionId, log) : null;
    const outcome = await runClaude({
      bin: context.claudeBin,
      args,
      cwd,
      env: buildChildEnv(context.envSource, settings.extraEnv, {
        workerId: context.workerId,
        runId,
        jobId,
      }),
      prompt: plan.prompt,
      marker: { name: RUN_MARKER, value: runId },
      timeoutMs,
      killGraceMs: settings.killGraceMs,
      maxOutputBytes: settings.maxOutputBytes,
      maxLineBytes: settings.maxLineBytes,
      signal: stop,
      now,
      onSpawn: (pid) => {
        events.started({
          pid,
          sessionId: plan.sessionId,
          cwd,
          resumed: plan.resumed,
          prompt: plan.promptKind,
          args,
        });
        log.info({ pid, sessionId: plan.sessionId, resumed: plan.resumed, cwd }, 'job started');
        job.updateProgress({ ...state, pid }).catch((error: unknown) => {
          log.warn({ err: error }, 'could not record the pid on the job');
        });
      },
      onLine: (line) =>
        events.line(line.stream === 'stdout' ? 'output' : 'error', line.text, {
          ...(line.partial ? { partial: true } : {}),
          ...(line.encoding ? { encoding: line.encoding } : {}),
        }),
    });
    await sync?.stop();

    const report = judgeRun(outcome, timeoutMs);
    const { streamSessionId, ...fields } = report;
    if (report.failure === 'abandoned') {
      // Another worker may own the job now: say nothing more under its name.
      log.warn({ pid: outcome.pid }, 'run stopped: the job lock was lost');
      events.discard();
      abandoned = true;
      throw new Error(report.error ?? 'abandoned');
    }
    const retrying =
      report.failure === 'shutdown' ||
      (!report.success &&
        report.failure !== 'cancelled' &&
        job.attemptsMade + 1 < (job.opts.attempts ?? 1));
    const result = events.terminal(report.success ? 'completed' : 'failed', {
      jobId,
      attempt,
      ...fields,
      sessionId: streamSessionId ?? plan.sessionId,
      resumed: plan.resumed,
      retrying,
    });
    await finish(context, job, events, state, result, log.child({ pid: outcome.pid }));

    if (result.success) return result;
    const reason = result.error ?? 'failed';
    if (result.failure === 'shutdown' && token !== undefined) {
      // Back to the queue without spending an attempt; the next one resumes the session.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (result.failure === 'cancelled') throw new UnrecoverableError(reason);
    throw new Error(reason);
  } catch (error) {
    if (events.ended || abandoned) throw error;
    // Something of the worker's own failed: the attempt still ends with a terminal event, and
    // the job fails (and is retried while attempts remain) with a reason that says so.
    const message = oneLine(`worker error: ${describe(error)}`);
    log.error({ err: error }, 'the attempt failed inside the worker');
    const result = events.terminal(
      'failed',
      resultWithoutRun({
        jobId,
        attempt,
        failure: 'worker-error',
        error: message,
        sessionId: prior?.sessionId ?? null,
        retrying: job.attemptsMade + 1 < (job.opts.attempts ?? 1),
        startedAt,
      }),
    );
    await finish(context, job, events, prior, result, log).catch(() => undefined);
    throw new Error(message, { cause: error });
  } finally {
    signal?.removeEventListener('abort', onBullCancel);
    runs.end(jobId);
    await events.close();
  }
}

async function finish(
  context: JobContext,
  job: ExecuteJob,
  events: JobEvents,
  state: RunState | null,
  result: ExecuteResult,
  log: Logger,
): Promise<void> {
  // The terminal event is in Redis before the job's state says it ended.
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

/** Keeps the session transcript in Redis while the run goes on, and once more at its end. */
function startSessionSync(context: JobContext, sessionId: string, log: Logger) {
  const { sessions } = context;
  if (!sessions) return null;
  const save = async (): Promise<void> => {
    try {
      await sessions.save(sessionId);
    } catch (error) {
      log.warn({ err: error, sessionId }, 'could not save the session transcript to Redis');
    }
  };
  let saving: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    saving = saving.then(save);
  }, context.settings.sessionSyncMs);
  return {
    stop: async (): Promise<void> => {
      clearInterval(timer);
      await saving;
      await save();
    },
  };
}

async function readCancelReason(
  redis: Redis,
  address: QueueAddress,
  jobId: string,
): Promise<string | null> {
  const raw = await redis.get(cancelKey(address, jobId));
  if (raw === null) return null;
  try {
    return CancelMarkerSchema.parse(JSON.parse(raw)).reason;
  } catch {
    return raw;
  }
}

/** How long the event history must outlive an attempt's start: its timeout plus the TTL. */
function retention(data: unknown, settings: JobSettings): number {
  const timeout =
    typeof data === 'object' &&
    data !== null &&
    'timeout' in data &&
    typeof data.timeout === 'number' &&
    data.timeout > 0
      ? data.timeout
      : settings.defaultTimeoutSeconds;
  return Math.ceil(timeout) + settings.eventsTtlSeconds;
}

function describe(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' && reason ? reason : 'no reason given';
}
