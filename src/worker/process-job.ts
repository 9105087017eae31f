import { randomUUID } from 'node:crypto';
import { UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  readRunState,
  resultWithoutRun,
  type ExecuteResult,
  type FailureKind,
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
import { recordEnd, startSessionSync, type SessionSync } from './attempt-support.js';
import { abandonedError, countAttempts, outOfAttemptsError } from './attempts.js';
import { readCancelReason } from './cancel-listener.js';
import type { EventPublisher } from './publisher.js';
import { planAttempt, SessionNotFoundError } from './session-plan.js';
import type { Isolation, RunBox } from '../isolation/index.js';
import type { SessionStore } from './sessions.js';
import { validateJob } from './validate-job.js';

export interface JobSettings {
  /** WORK_DIR, as a real path. */
  readonly workDir: string;
  readonly defaultTimeoutSeconds: number;
  /** MAX_TIMEOUT_SECONDS: the longest `timeout` a job may ask for. */
  readonly maxTimeoutSeconds: number;
  /** ALLOWED_PERMISSION_MODES: the permission modes a job may ask for. */
  readonly allowedPermissionModes: readonly string[];
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
  readonly isolation: Isolation;
  readonly runs: ActiveRuns;
  readonly logger: Logger;
  readonly now: () => number;
  readonly onFinished?: (result: ExecuteResult) => void;
}

export type ExecuteJob = Job<unknown, ExecuteResult>;

/** The failure an attempt ends with when it is stopped from outside before the CLI ran. */
const STOPPED: Record<StopRequest['cause'], FailureKind> = {
  cancelled: 'cancelled',
  shutdown: 'shutdown',
  abandoned: 'abandoned',
};

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
  const last = await readLastEvent(redis, address, jobId);
  const attempts = countAttempts(job, prior, last);
  const { attempt } = attempts;
  const events = publisher.open(jobId, attempt, Math.max(last?.seq ?? 0, prior?.lastSeq ?? 0) + 1);
  const log = context.logger.child({ jobId, attempt });
  const stop = runs.begin(jobId);
  const stopRequest = (): StopRequest | null =>
    stop.aborted ? (stop.reason as StopRequest) : null;
  const onBullCancel = (): void => {
    runs.stop(jobId, { cause: 'cancelled', message: describeReason(signal?.reason) });
  };
  signal?.addEventListener('abort', onBullCancel, { once: true });

  // Filled in as the attempt gets further, for whatever ends it.
  let state: RunState | null = null;
  let sync: SessionSync | null = null;
  let box: RunBox | null = null;
  const jobKey = `${address.prefix}:${address.queueName}:${jobId}`;
  const retryingAfter = (failure: FailureKind | null): boolean => {
    if (
      failure === null ||
      failure === 'cancelled' ||
      failure === 'invalid-request' ||
      failure === 'session-not-found'
    )
      return false;
    if (failure === 'shutdown' || failure === 'abandoned') return true;
    // A cancel that came while the attempt was ending on its own still means: no more attempts.
    if (stopRequest()?.cause === 'cancelled') return false;
    return attempts.retryOnFailure;
  };
  const withoutRun = (failure: FailureKind, error: string) =>
    resultWithoutRun({
      jobId,
      attempt,
      failure,
      error: oneLine(error),
      sessionId: state?.sessionId ?? prior?.sessionId ?? null,
      retrying: retryingAfter(failure),
      startedAt,
    });

  /** Publishes the end of the attempt, records it on the job, and hands BullMQ the outcome. */
  const conclude = async (result: Omit<ExecuteResult, 'lastSeq'>): Promise<ExecuteResult> => {
    if (result.failure === 'abandoned' && stopRequest()?.cause === 'abandoned') {
      // Another worker may own the job now: say nothing more under its name.
      events.discard();
      log.warn({ error: result.error }, 'run stopped: the job is no longer ours');
      throw new Error(result.error ?? 'abandoned');
    }
    const final = events.terminal(result.success ? 'completed' : 'failed', result);
    await recordEnd(context, job, events, state ?? prior, final, log);
    // The job is over: a scratch directory of its own goes with it.
    if (!final.retrying) await context.isolation.removeScratch(jobKey);
    if (final.success) return final;
    const reason = final.error ?? 'failed';
    if (final.failure === 'shutdown' && token !== undefined) {
      // Back to the queue without spending an attempt; the next one resumes the session.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    throw final.retrying ? new Error(reason) : new UnrecoverableError(reason);
  };

  try {
    // Attempts before this one that never said how they ended: their workers died or lost the job.
    for (const abandoned of attempts.abandoned) {
      events.terminal(
        'failed',
        {
          ...withoutRun('abandoned', abandonedError(abandoned)),
          attempt: abandoned,
          retrying: true,
        },
        abandoned,
      );
    }
    if (attempts.exhausted) {
      // Every stall spent an attempt and none is left: the last one's end is the job's.
      const error = outOfAttemptsError(attempt, attempts.allowed);
      return await conclude({ ...withoutRun('abandoned', error), retrying: false });
    }

    const cancelled = await readCancelReason(redis, address, jobId);
    if (cancelled !== null) {
      return await conclude(withoutRun('cancelled', `cancelled before it started: ${cancelled}`));
    }
    const valid = await validateJob(job.data, {
      ...settings,
      scratchDir: context.isolation.scratchDir(jobKey),
    });
    if (!valid.ok)
      return await conclude(withoutRun('invalid-request', `invalid job data: ${valid.reason}`));
    const { request, cwd } = valid;

    const runId = randomUUID();
    box = await context.isolation.open({ runId, cwd });
    const place = { configDir: box.configDir, cwd };
    let plan;
    try {
      plan = await planAttempt(request, prior, context.sessions, place);
    } catch (error) {
      if (!(error instanceof SessionNotFoundError)) throw error;
      return await conclude(withoutRun('session-not-found', error.message));
    }
    await box.seal();
    state = {
      attempt,
      sessionId: plan.sessionId,
      transcriptBaseline: plan.transcriptBaseline,
      lastSeq: events.lastSeq,
      pid: null,
      result: prior?.result ?? null,
    };
    // Recorded before the CLI starts, so a retry after a crash continues this very session.
    await job.updateProgress(state);
    const early = stopRequest();
    if (early) {
      const prefix = early.cause === 'cancelled' ? 'cancelled before it started: ' : '';
      return await conclude(withoutRun(STOPPED[early.cause], `${prefix}${early.message}`));
    }

    const timeoutSeconds = request.timeout ?? settings.defaultTimeoutSeconds;
    const args = buildArgs(request, plan.session);
    const running = state;
    const isolation = box.isolation;
    const sessionRef =
      plan.sessionId === null
        ? null
        : { scope: request.sessionScope ?? '', sessionId: plan.sessionId };
    sync = startSessionSync(context, sessionRef, place, log, (text) => {
      void events.line('error', text, {});
    });
    const outcome = await runClaude({
      bin: context.claudeBin,
      args,
      cwd,
      env: {
        ...buildChildEnv(context.envSource, settings.extraEnv, {
          workerId: context.workerId,
          runId,
          jobId,
        }),
        ...box.env,
      },
      confinement: box.confinement,
      prompt: plan.prompt,
      marker: { name: RUN_MARKER, value: runId },
      timeoutMs: timeoutSeconds * 1000,
      killGraceMs: settings.killGraceMs,
      maxOutputBytes: settings.maxOutputBytes,
      maxLineBytes: settings.maxLineBytes,
      signal: stop,
      now,
      onSpawn: (pid) => {
        const data = {
          pid,
          sessionId: plan.sessionId,
          cwd,
          resumed: plan.resumed,
          prompt: plan.promptKind,
          args,
          isolation,
          ...(plan.note === undefined ? {} : { sessionNote: plan.note }),
        };
        // The history lives as long as the run may, plus the TTL after its end.
        events.started(data, Math.ceil(timeoutSeconds) + settings.eventsTtlSeconds);
        log.info({ pid, sessionId: plan.sessionId, resumed: plan.resumed, cwd }, 'job started');
        job.updateProgress({ ...running, pid }).catch((error: unknown) => {
          log.warn({ err: error }, 'could not record the pid on the job');
        });
      },
      onLine: (line) => {
        if (stopRequest()?.cause === 'abandoned') return undefined;
        return events.line(line.stream === 'stdout' ? 'output' : 'error', line.text, {
          ...(line.partial ? { partial: true } : {}),
          ...(line.encoding ? { encoding: line.encoding } : {}),
        });
      },
    });
    await sync?.stop();
    await box.close();
    if (outcome.leftovers > 0) {
      log.info({ count: outcome.leftovers }, 'stopped processes the run left behind');
    }

    const { streamSessionId, ...report } = judgeRun(outcome, timeoutSeconds * 1000);
    return await conclude({
      jobId,
      attempt,
      ...report,
      sessionId: streamSessionId ?? plan.sessionId,
      resumed: plan.resumed,
      retrying: retryingAfter(report.failure),
    });
  } catch (error) {
    if (events.ended || error instanceof WaitingError || stopRequest()?.cause === 'abandoned') {
      throw error;
    }
    // Something of the worker's own failed: the attempt still ends with a terminal event, and
    // the job fails (and is retried while attempts remain) with a reason that says so.
    log.error({ err: error }, 'the attempt failed inside the worker');
    return await conclude(withoutRun('worker-error', `worker error: ${describeReason(error)}`));
  } finally {
    await sync?.stop().catch(() => undefined);
    await box?.close().catch((error: unknown) => {
      log.error({ err: error }, 'could not clean up after the run');
    });
    signal?.removeEventListener('abort', onBullCancel);
    runs.end(jobId, stop);
    await events.close();
  }
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' && reason ? reason : 'no reason given';
}
