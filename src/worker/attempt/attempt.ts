import { randomUUID } from 'node:crypto';
import { DelayedError, UnrecoverableError, WaitingError } from 'bullmq';
import {
  jobIdProblem,
  jobKey,
  readRunState,
  resultWithoutRun,
  withoutOutput,
  type ExecuteRequest,
  type ExecuteResult,
  type FailureKind,
  type RunState,
  type Spending,
  type WorkspaceRequest,
  type WorkspaceResult,
} from '../../contract/index.js';
import {
  buildArgs,
  buildChildEnv,
  judgeAnswer,
  judgeRun,
  oneLine,
  RUN_MARKER,
  type RunReport,
  runClaude,
  RunPauses,
  type RunConfigArgs,
  type RunSpec,
  type StopRequest,
} from '../../executor/index.js';
import type { RunBox } from '../../isolation/index.js';
import { readCancelReason } from '../../redis/cancel-marker.js';
import { repairCounters } from '../../redis/job-counters.js';
import { readNewest } from '../../redis/history.js';
import { lockKeyOf, type WriteFence } from '../../redis/write-fence.js';
import type { JobEvents } from '../events/job-events.js';
import { planAttempt, SessionNotFoundError, type AttemptPlan } from '../sessions/session-plan.js';
import { startSessionSync, type SessionSync } from '../sessions/session-sync.js';
import type { TranscriptPlace } from '../sessions/sessions.js';
import { abandonedError, countAttempts, outOfAttemptsError, type Attempts } from './attempts.js';
import type { ExecuteJob, JobContext } from './context.js';
import { NO_RATE_LIMITS, planRateLimitRetry, type RateLimitRetry } from './rate-limit-retry.js';
import { JobLog } from './job-log.js';
import { recordEnd } from './record-end.js';
import { endedAlready } from './ended-already.js';
import { profileFilesFor, writeRunConfig } from './run-config.js';
import {
  budgetLeft,
  budgetSpentMessage,
  MIN_ATTEMPT_BUDGET_USD,
  spendingAfter,
  spendingAtStart,
  type ReportedCost,
} from './spending.js';
import { openBoxWhenFree } from './open-box.js';
import { validateJob } from './validate-job.js';
import { openWorkspace, recordWorkspaceChange, WorkspaceCheckpoints } from './workspace-step.js';
import type { Checkout } from '../../workspace/index.js';
import { asError } from '../../common/errors.js';

/** How an attempt ends for BullMQ: a result to return, or an error to throw (fail or requeue). */
export type Ending =
  | { readonly kind: 'return'; readonly result: ExecuteResult }
  | { readonly kind: 'throw'; readonly error: Error };

/** What an attempt has ready once it may start the CLI. */
interface Prepared {
  readonly request: ExecuteRequest;
  readonly cwd: string;
  readonly runId: string;
  readonly box: RunBox;
  readonly plan: AttemptPlan;
  readonly place: TranscriptPlace;
  readonly runConfig: RunConfigArgs;
  /** This attempt's --max-budget-usd: what is left of the job's maxBudgetUsd (null: none). */
  readonly budgetUsd: number | null;
}

/** The failure an attempt ends with when it is stopped from outside before the CLI ran. */
const STOPPED: Record<StopRequest['cause'], FailureKind> = {
  cancelled: 'cancelled',
  shutdown: 'shutdown',
  abandoned: 'abandoned',
};

/** Failures no further attempt can mend. */
const FINAL: readonly (FailureKind | null)[] = [
  null,
  'cancelled',
  'invalid-request',
  'session-not-found',
  'budget',
  // git refused the source or ref: another attempt would ask it the same (one it could not
  // reach is retried, see prepare).
  'workspace-failed',
];

/** Why something the run could change is kept, not removed as root. */
const LINGERING = { reason: 'a process of the run may still be there' };

/**
 * One attempt of an execute job, phase by phase: close what earlier attempts left open,
 * prepare (cancel check, validation, the run's box, the session), run the CLI, and conclude.
 * Whatever ends it, `end` publishes its terminal event and records it before BullMQ hears.
 */
export class Attempt {
  private state: RunState | null = null;
  private sync: SessionSync | null = null;
  private box: RunBox | null = null;
  /** The job's checkout for this attempt, when it asked for a workspace. */
  private checkout: Checkout | null = null;
  /** Its change stored as the run goes on, so a worker that dies loses little of it. */
  private checkpoints: WorkspaceCheckpoints | null = null;
  /** The checkpoints' holds of the run, which its idle time does not count. */
  private readonly pauses = new RunPauses();
  /** Whether the attempt ended well: a failed one's checkout may be kept for debugging. */
  private succeeded = false;
  /** Set when the run ended on a 429 or 529 and the job is to run again later. */
  private delayedRetry: RateLimitRetry | null = null;
  private readonly startedAt: number;
  private readonly jobKey: string;
  /** What the attempt writes for a retry to go on from lands only while the job is its own. */
  private readonly fence: WriteFence | undefined;
  private readonly log: JobContext['logger'];
  /** The attempt in brief in the job's own log, for queue dashboards. */
  private readonly jobLog: JobLog;

  private constructor(
    private readonly context: JobContext,
    private readonly job: ExecuteJob,
    private readonly token: string | undefined,
    private readonly prior: RunState | null,
    private readonly attempts: Attempts,
    private readonly events: JobEvents,
    private readonly stop: AbortSignal,
    /** The result the job already ended with for good (see endedAlready), or null. */
    private readonly ended: ExecuteResult | null,
    /** What was wrong with the job's counters in Redis (see repairCounters), or null. */
    private readonly badCounters: string | null,
  ) {
    this.startedAt = context.now();
    this.jobKey = jobKey(context.address, this.jobId);
    this.fence = token === undefined ? undefined : { lockKey: lockKeyOf(this.jobKey), token };
    this.log = context.logger.child({ jobId: this.jobId, attempt: this.number });
    this.jobLog = new JobLog(job, this.number, (error) => {
      this.log.warn({ err: error }, "could not write to the job's log; it stays incomplete");
    });
  }

  static async begin(context: JobContext, job: ExecuteJob, token?: string): Promise<Attempt> {
    const jobId = job.id ?? '';
    const prior = readRunState(job.progress);
    // Its seq by the entry's id, whatever it holds: a seq in the history is never written again.
    const [newest, badCounters] = await Promise.all([
      readNewest(context.redis, context.address, jobId),
      repairCounters(context.redis, jobKey(context.address, jobId), job),
    ]);
    const ended = endedAlready(job, prior, newest.event);
    const attempts = countAttempts(job, prior, newest.event);
    const nextSeq = Math.max(newest.seq, prior?.lastSeq ?? 0) + 1;
    const events = context.publisher.open(jobId, attempts.attempt, nextSeq);
    const stop = context.runs.begin(jobId);
    return new Attempt(context, job, token, prior, attempts, events, stop, ended, badCounters);
  }

  get jobId(): string {
    return this.job.id ?? '';
  }

  get number(): number {
    return this.attempts.attempt;
  }

  /** The whole attempt; errors of the worker's own still end it with a terminal event. */
  async run(): Promise<Ending> {
    if (this.ended !== null) return this.endedBefore(this.ended);
    try {
      const closed = await this.closeEarlierAttempts();
      if (closed) return closed;
      const prepared = await this.prepare();
      return 'kind' in prepared ? prepared : await this.execute(prepared);
    } catch (error) {
      return this.failInside(error);
    }
  }

  /**
   * The job as it ended before a stall put it back: its end is published and recorded already,
   * and BullMQ now hears it. Nothing runs.
   */
  private endedBefore(result: ExecuteResult): Ending {
    this.log.warn(
      { failure: result.failure, lastSeq: result.lastSeq },
      'the job had ended before its worker stopped or lost it: ending it so, without running it again',
    );
    if (result.success) return { kind: 'return', result };
    return { kind: 'throw', error: new UnrecoverableError(result.error ?? 'failed') };
  }

  /** Stops the session sync and the box, and lets go of the job's events and stop signal. */
  async cleanup(): Promise<void> {
    await this.sync?.stop().catch(() => undefined);
    await this.checkpoints?.close();
    await this.box?.close().catch((error: unknown) => {
      this.log.error({ err: error }, 'could not clean up after the run');
    });
    if (this.runMayLinger) {
      if (this.checkout) {
        this.log.warn({ ...LINGERING, dir: this.checkout.dir }, "kept the job's checkout");
        await this.checkout.leave().catch((error: unknown) => {
          this.log.error({ err: error }, "could not leave the job's checkout to the sweep");
        });
      }
    } else {
      await this.checkout?.release(!this.succeeded).catch((error: unknown) => {
        this.log.error({ err: error }, "could not remove the job's checkout");
      });
    }
    this.context.runs.end(this.jobId, this.stop);
    await this.events.close();
  }

  /** Earlier attempts that never said how they ended: their workers died or lost the job. */
  private async closeEarlierAttempts(): Promise<Ending | null> {
    for (const abandoned of this.attempts.abandoned) {
      const result = this.withoutRun('abandoned', abandonedError(abandoned));
      this.events.terminal('failed', { ...result, attempt: abandoned, retrying: true }, abandoned);
    }
    if (!this.attempts.exhausted) return null;
    // Every stall spent an attempt and none is left: the last one's end is the job's.
    const error = outOfAttemptsError(this.number, this.attempts.allowed);
    return this.end({ ...this.withoutRun('abandoned', error), retrying: false });
  }

  private async prepare(): Promise<Prepared | Ending> {
    const { context } = this;
    if (this.badCounters !== null) {
      return this.end(this.withoutRun('invalid-request', `invalid job data: ${this.badCounters}`));
    }
    const cancelled = await readCancelReason(context.redis, context.address, this.jobId);
    if (cancelled !== null) {
      return this.end(this.withoutRun('cancelled', `cancelled before it started: ${cancelled}`));
    }
    const idProblem = jobIdProblem(this.jobId);
    if (idProblem !== null) {
      return this.end(this.withoutRun('invalid-request', `invalid job: ${idProblem}`));
    }
    const scratchDir = context.isolation.scratchDir(this.jobKey);
    const valid = await validateJob(this.job.data, {
      ...context.settings,
      scratchDir,
      runRoot: context.isolation.runRoot,
    });
    if (!valid.ok) {
      return this.end(this.withoutRun('invalid-request', `invalid job data: ${valid.reason}`));
    }
    const { request } = valid;
    let { cwd } = valid;
    // Like a checkout (below), made once the job is known to be valid.
    if (cwd === scratchDir) context.isolation.makeScratch(this.jobKey);
    const profile = profileFilesFor(request, context.settings.profiles, context.envSource);
    if (!profile.ok) return this.end(this.withoutRun('worker-error', profile.error));
    const budgetUsd = budgetLeft(request.maxBudgetUsd, this.prior?.spending);
    if (budgetUsd !== null && budgetUsd < MIN_ATTEMPT_BUDGET_USD) {
      const message = budgetSpentMessage(request.maxBudgetUsd ?? 0, this.prior?.spending);
      return this.end(this.withoutRun('budget', message));
    }
    if (request.workspace !== undefined) {
      const checkout = await this.checkoutFor(request.workspace);
      if ('kind' in checkout) return checkout;
      cwd = checkout.dir;
    }
    const runId = randomUUID();
    const addDirs = request.addDirs ?? [];
    const open = () => context.isolation.open({ runId, cwd, addDirs });
    const box = (this.box = await openBoxWhenFree(open, this.stop, context.now));
    if (box === null) return this.endBeforeStart(this.stopRequest() as StopRequest);
    const runConfig = await writeRunConfig(box, profile.files);
    const place = { configDir: box.configDir, cwd, owner: box.isolation.uid };
    let plan: AttemptPlan;
    try {
      plan = await planAttempt(request, this.prior, context.sessions, place);
    } catch (error) {
      if (!(error instanceof SessionNotFoundError)) throw error;
      return this.end(this.withoutRun('session-not-found', error.message));
    }
    await box.seal();
    await this.recordStart(plan);
    const early = this.stopRequest();
    if (early) return this.endBeforeStart(early);
    return { request, cwd, runId, box, plan, place, runConfig, budgetUsd };
  }

  /** The job's checkout for this attempt, or how the attempt ends where it has none. */
  private async checkoutFor(workspace: WorkspaceRequest): Promise<{ dir: string } | Ending> {
    const opened = await openWorkspace(this.context, this.jobId, this.jobKey, workspace, this.stop);
    if (opened.ok) this.checkout = opened.checkout;
    // A shutdown or a cancel while git fetched (which stopped it): said as such, not as git.
    const stopped = this.stopRequest();
    if (stopped) return this.endBeforeStart(stopped);
    if (!opened.ok) {
      const failed = this.withoutRun('workspace-failed', opened.reason);
      // A source git could not reach may answer the next attempt; one that refused will not.
      return this.end(opened.unreachable ? { ...failed, retrying: this.retrying() } : failed);
    }
    if (opened.note !== null) void this.events.line('error', opened.note, {});
    return { dir: opened.checkout.dir };
  }

  /** The end of an attempt stopped from outside before the CLI ran. */
  private endBeforeStart(stop: StopRequest): Promise<Ending> {
    const prefix = stop.cause === 'cancelled' ? 'cancelled before it started: ' : '';
    return this.end(this.withoutRun(STOPPED[stop.cause], `${prefix}${stop.message}`));
  }

  /** The checkpoints of the job's workspace while the run goes on, when it has one. */
  private checkpointsOf(box: RunBox, timeoutSeconds: number): WorkspaceCheckpoints | null {
    if (this.checkout === null) return null;
    const ttlSeconds = Math.ceil(timeoutSeconds) + this.context.settings.eventsTtlSeconds;
    return new WorkspaceCheckpoints(
      this.context,
      this.jobId,
      this.checkout,
      ttlSeconds,
      this.log,
      (step) => this.pauses.during(() => box.whileStopped(step)),
      this.fence,
    );
  }

  /** Recorded before the CLI starts, so a retry after a crash continues this very session. */
  private async recordStart(plan: AttemptPlan): Promise<void> {
    this.state = {
      attempt: this.number,
      sessionId: plan.sessionId,
      transcriptBaseline: plan.transcriptBaseline,
      ...(plan.forkedAfter === undefined ? {} : { forkedAfter: plan.forkedAfter }),
      lastSeq: this.events.lastSeq,
      pid: null,
      // The earlier attempt's output is in the history: every progress update stays small.
      result: this.prior?.result ? withoutOutput(this.prior.result) : null,
      spending: spendingAtStart(this.prior?.spending, plan.session),
      ...(this.prior?.rateLimit === undefined ? {} : { rateLimit: this.prior.rateLimit }),
    };
    await this.job.updateProgress(this.state);
  }

  private async execute(prepared: Prepared): Promise<Ending> {
    const { request, plan } = prepared;
    const timeoutSeconds = request.timeout ?? this.context.settings.defaultTimeoutSeconds;
    const session =
      plan.sessionId === null
        ? null
        : {
            ref: { scope: request.sessionScope ?? '', sessionId: plan.sessionId },
            from: plan.shipFrom,
          };
    const { sessions, settings } = this.context;
    this.sync = startSessionSync(
      sessions,
      settings.sessionSyncMs,
      session,
      prepared.place,
      this.log,
      (text) => {
        void this.events.line('error', text, {});
      },
      this.fence,
    );
    this.checkpoints = this.checkpointsOf(prepared.box, timeoutSeconds);
    const outcome = await runClaude(this.runSpec(prepared, timeoutSeconds));
    // The job is another worker's now, whose attempt may wait for this run's directories while
    // the end of this one waits for Redis (a checkpoint, the session's last lines): given back
    // first.
    if (this.abandoned()) await this.closeBox();
    await this.checkpoints?.close();
    await this.sync?.stop(!this.abandoned());
    // A box that cannot be closed keeps its uid out of the pool; the run's result stands, and
    // cleanup() logs why.
    await this.closeBox();
    if (outcome.leftovers > 0) {
      this.log.info({ count: outcome.leftovers }, 'stopped processes the run left behind');
    }
    const { streamSessionId, rateLimit, structuredOutputDroppedBytes, ...report } =
      await judgeAnswer(judgeRun(outcome, timeoutSeconds * 1000), request.jsonSchema);
    if (structuredOutputDroppedBytes !== null) {
      this.log.warn(
        { bytes: structuredOutputDroppedBytes },
        'the structured answer was over MAX_OUTPUT_BYTES as JSON: not kept',
      );
    }
    const spending = this.recordSpending(plan, {
      costUsd: report.costUsd,
      costSinceLastResultUsd: outcome.summary.resultLine?.costSinceLastResultUsd ?? null,
      streamSessionId,
    });
    const retry = this.retryAfterRun(report.failure, rateLimit);
    // A run whose job is another worker's now stores nothing under its name (see end).
    const workspace = this.abandoned() ? null : await this.workspaceChange(request);
    return this.end({
      jobId: this.jobId,
      attempt: this.number,
      ...report,
      jobCostUsd: spending.jobCostUsd,
      sessionId: streamSessionId ?? plan.sessionId,
      resumed: plan.resumed,
      retrying: retry.retrying,
      retryAt: retry.retryAt,
      workspace,
    });
  }

  /**
   * What the run changed in its checkout, however it ended; null when the change cannot be read,
   * or may not be (a process of the run may still be there), which costs the result its
   * workspace, never the result itself.
   */
  private async workspaceChange(request: ExecuteRequest): Promise<WorkspaceResult | null> {
    if (this.checkout === null) return null;
    if (this.runMayLinger) {
      // git would read, as root and unheld, files a process of the run may still swap for links
      // to files of root's: the change stays what the last checkpoint stored.
      this.log.warn(
        { ...LINGERING, dir: this.checkout.dir },
        "did not read the change in the job's checkout",
      );
      return null;
    }
    try {
      return await recordWorkspaceChange(
        this.context,
        this.jobId,
        this.checkout,
        request,
        this.fence,
      );
    } catch (error) {
      this.log.error({ err: error }, "could not record the change in the job's workspace");
      return null;
    }
  }

  /** What the job spent once this attempt ended, kept in the run state that `end` records. */
  private recordSpending(plan: AttemptPlan, reported: ReportedCost): Spending {
    const atStart = this.state?.spending ?? spendingAtStart(this.prior?.spending, plan.session);
    const spending = spendingAfter(atStart, plan.session, reported);
    if (this.state !== null) this.state = { ...this.state, spending };
    return spending;
  }

  /**
   * Whether another attempt follows the run, and when: a run that ended on a 429 or 529 is
   * retried after the API's retry-after (its delays counted in the run state), or not at all.
   */
  private retryAfterRun(
    failure: FailureKind | null,
    rateLimit: RunReport['rateLimit'],
  ): {
    retrying: boolean;
    retryAt: string | null;
  } {
    if (rateLimit === null) return { retrying: this.retryingAfter(failure), retryAt: null };
    const retry = planRateLimitRetry({
      hit: rateLimit,
      count: this.prior?.rateLimit ?? NO_RATE_LIMITS,
      maxDelays: this.context.settings.maxRateLimitDelays,
      attemptLeft: this.attempts.retryOnFailure,
      now: this.context.now(),
    });
    if (retry === null || this.stopRequest()?.cause === 'cancelled') {
      return { retrying: false, retryAt: null };
    }
    this.delayedRetry = retry;
    if (this.state !== null) this.state = { ...this.state, rateLimit: retry.count };
    return { retrying: true, retryAt: new Date(retry.retryAt).toISOString() };
  }

  /** The CLI started: its `started` event, log line and job log, and its pid on the job. */
  private onStarted(pid: number, prepared: Prepared, args: string[], timeoutSeconds: number): void {
    const { settings } = this.context;
    const { cwd, box, plan } = prepared;
    const data = {
      pid,
      sessionId: plan.sessionId,
      cwd,
      resumed: plan.resumed,
      prompt: plan.promptKind,
      args,
      isolation: box.isolation,
      ...(plan.note === undefined ? {} : { sessionNote: plan.note }),
    };
    // The history lives as long as the run may, plus the TTL after its end.
    this.events.started(data, Math.ceil(timeoutSeconds) + settings.eventsTtlSeconds);
    this.log.info({ pid, sessionId: plan.sessionId, resumed: plan.resumed, cwd }, 'job started');
    this.jobLog.started(pid, plan.sessionId, plan.resumed);
    this.job.updateProgress({ ...(this.state as RunState), pid }).catch((error: unknown) => {
      this.log.warn({ err: error }, 'could not record the pid on the job');
    });
  }

  private runSpec(prepared: Prepared, timeoutSeconds: number): RunSpec {
    const { context, events } = this;
    const { settings } = context;
    const { request, cwd, runId, box, plan, runConfig, budgetUsd } = prepared;
    const args = buildArgs(request, plan.session, { runConfig, budgetUsd });
    const identity = { workerId: context.workerId, runId, jobId: this.jobId };
    return {
      bin: context.claudeBin,
      args,
      cwd,
      env: { ...buildChildEnv(context.envSource, settings.extraEnv, identity), ...box.env },
      confinement: box.confinement,
      prompt: plan.prompt,
      marker: { name: RUN_MARKER, value: runId },
      timeoutMs: timeoutSeconds * 1000,
      ...(request.idleTimeout === undefined ? {} : { idleTimeoutMs: request.idleTimeout * 1000 }),
      pauses: this.pauses,
      resultGraceMs: settings.resultGraceMs,
      killGraceMs: settings.killGraceMs,
      maxOutputBytes: settings.maxOutputBytes,
      maxLineBytes: settings.maxLineBytes,
      signal: this.stop,
      now: context.now,
      onSpawn: (pid) => this.onStarted(pid, prepared, args, timeoutSeconds),
      onLine: (line) => {
        if (this.abandoned()) return undefined;
        if (line.stream === 'stdout' && !line.partial) this.jobLog.output(line.text);
        if (line.toolResult) this.checkpoints?.request();
        const data = {
          ...(line.partial ? { partial: true } : {}),
          ...(line.encoding ? { encoding: line.encoding } : {}),
        };
        return events.line(
          line.stream === 'stdout' ? 'output' : 'error',
          line.text,
          data,
          line.bytes,
        );
      },
    };
  }

  /**
   * Publishes the end of the attempt, records it on the job, and says what BullMQ is to hear:
   * the result, or the error that fails the job (retried or not) or puts it back in the queue.
   */
  private async end(result: Omit<ExecuteResult, 'lastSeq'>): Promise<Ending> {
    if (this.abandoned()) return this.givenUp(result);
    const final = this.events.terminal(result.success ? 'completed' : 'failed', result);
    this.succeeded = final.success;
    // The job may be lost while its end waits for Redis (cut off past the lock's duration):
    // what is not written by then goes unsaid, as the next attempt's events may come first.
    const discardIfLost = (): void => {
      if (this.abandoned()) this.events.discard();
    };
    this.stop.addEventListener('abort', discardIfLost);
    try {
      const lost = () => this.abandoned();
      const state = this.state ?? this.prior;
      if (!(await recordEnd(this.context, this.job, this.events, state, final, this.log, lost))) {
        return this.givenUp(result);
      }
    } finally {
      this.stop.removeEventListener('abort', discardIfLost);
    }
    await this.jobLog.ended(final);
    if (!final.retrying) await this.removeScratch();
    if (final.success) return { kind: 'return', result: final };
    const reason = final.error ?? 'failed';
    if (final.failure === 'shutdown' && this.token !== undefined) {
      // Back to the queue without spending an attempt; the next one resumes the session.
      await this.job.moveToWait(this.token);
      return { kind: 'throw', error: new WaitingError() };
    }
    if (final.retrying && this.delayedRetry !== null && this.token !== undefined) {
      // BullMQ counts no attempt for this; a 529's is counted in the run state.
      await this.job.moveToDelayed(this.delayedRetry.retryAt, this.token);
      return { kind: 'throw', error: new DelayedError(reason) };
    }
    const error = final.retrying ? new Error(reason) : new UnrecoverableError(reason);
    return { kind: 'throw', error };
  }

  /**
   * Another worker may own the job now, however the run ended meanwhile: nothing more is said
   * under its name.
   */
  private givenUp(result: Omit<ExecuteResult, 'lastSeq'>): Ending {
    this.events.discard();
    this.log.warn({ error: result.error }, 'run stopped: the job is no longer ours');
    return { kind: 'throw', error: new Error(result.error ?? 'abandoned') };
  }

  /** Closes the run's box (once: close is the box's own promise; cleanup() logs a failure). */
  private async closeBox(): Promise<void> {
    await this.box?.close().catch(() => undefined);
  }

  /**
   * Whether the run's closed box did not find it gone: a process of it may still be there, so
   * nothing the run could change is removed as root.
   */
  private get runMayLinger(): boolean {
    return this.box !== null && !this.box.runGone;
  }

  /** The job is over: a scratch directory of its own goes with it. */
  private async removeScratch(): Promise<void> {
    // The run must be over first: end() can come before execute() closed the box.
    await this.closeBox();
    const dir = this.context.isolation.scratchDir(this.jobKey);
    if (this.runMayLinger && dir !== null) {
      this.box?.removeOnceCleared(...this.context.isolation.scratchPaths(this.jobKey));
      this.log.warn(
        { ...LINGERING, dir },
        "kept the job's scratch directory until its uid is cleared",
      );
      return;
    }
    await this.context.isolation.removeScratch(this.jobKey).catch((error: unknown) => {
      this.log.error({ err: error }, "could not remove the job's scratch directory");
    });
  }

  /**
   * Something of the worker's own failed: the attempt still ends with a terminal event, and the
   * job fails (and is retried while attempts remain) with a reason that says so. Past its
   * terminal event, or once the job is another worker's, there is nothing more to say.
   */
  private async failInside(error: unknown): Promise<Ending> {
    if (this.events.ended || this.abandoned()) {
      return { kind: 'throw', error: asError(error) };
    }
    this.log.error({ err: error }, 'the attempt failed inside the worker');
    return this.end(this.withoutRun('worker-error', `worker error: ${describeReason(error)}`));
  }

  private stopRequest(): StopRequest | null {
    return this.stop.aborted ? (this.stop.reason as StopRequest) : null;
  }

  /** Whether the job's lock was lost: another worker may own the job now. */
  private abandoned(): boolean {
    return this.stopRequest()?.cause === 'abandoned';
  }

  private retryingAfter(failure: FailureKind | null): boolean {
    if (FINAL.includes(failure)) return false;
    if (failure === 'shutdown' || failure === 'abandoned') return true;
    return this.retrying();
  }

  /** Whether a failure that another attempt may mend is retried: attempts left, no cancel. */
  private retrying(): boolean {
    // A cancel that came while the attempt was ending on its own still means: no more attempts.
    if (this.stopRequest()?.cause === 'cancelled') return false;
    return this.attempts.retryOnFailure;
  }

  private withoutRun(failure: FailureKind, error: string): Omit<ExecuteResult, 'lastSeq'> {
    return resultWithoutRun({
      jobId: this.jobId,
      attempt: this.number,
      failure,
      error: oneLine(error),
      sessionId: this.state?.sessionId ?? this.prior?.sessionId ?? null,
      retrying: this.retryingAfter(failure),
      startedAt: this.startedAt,
      jobCostUsd: (this.state ?? this.prior)?.spending?.jobCostUsd ?? null,
    });
  }
}

export function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  return typeof reason === 'string' && reason ? reason : 'no reason given';
}
