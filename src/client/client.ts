import { PRIORITY_LIMIT, Queue, type JobsOptions } from 'bullmq';
import {
  CANCEL_MARKER_TTL_SECONDS,
  cancelKey,
  controlChannel,
  BULLMQ_QUEUE_KEYS,
  jobIdProblem,
  MAX_DATE_SECONDS,
  MIN_READ_TOKEN_SECRET_LENGTH,
  mintReadToken,
  parseExecuteRequest,
  type CancelMarker,
  type CancelMessage,
  type ExecuteEvent,
  type ExecuteRequest,
  type ExecuteResult,
  type QueueAddress,
} from '../contract/index.js';
import { traceMetadata } from '../common/trace-context.js';
import type { RedisClient } from '../redis/connections.js';
import { bullmqRefusal } from './bullmq-refusal.js';
import { ClaudeboxError } from './errors.js';
import { openQueue, type QueueTarget } from './queue-connection.js';
import { jobEvents, type EventsOptions } from './event-stream.js';
import { isFinished, waitForResult } from './job-result.js';
import { Subscriptions } from './live-events.js';
import { readPatch, type StoredPatch } from '../redis/patches.js';

export interface ClientOptions extends QueueTarget {
  /**
   * Connection trouble while Redis is away (the client reconnects by itself and calls wait
   * meanwhile). Ignored by default.
   */
  readonly onError?: (error: Error) => void;
  /** The HTTP gateway's GATEWAY_SECRET, for `readToken` (or give it to each call). */
  readonly readTokenSecret?: string;
}

export type CancelOutcome =
  /**
   * The job is running: its worker stops the run now and fails the job as cancelled. A run that
   * had already ended (the CLI exited) still ends the job as it ended: `result()` says how.
   */
  | { readonly jobId: string; readonly outcome: 'stopping'; readonly state: 'active' }
  /** The job had not started: it will fail as cancelled without running. */
  | { readonly jobId: string; readonly outcome: 'cancelled'; readonly state: string }
  | {
      readonly jobId: string;
      readonly outcome: 'already-finished';
      readonly state: 'completed' | 'failed';
    }
  | { readonly jobId: string; readonly outcome: 'not-found' };

export interface ClaudeboxClient {
  /**
   * Validates the request (throwing ClaudeboxError 'invalid-request' naming each bad field) and
   * enqueues it, with the active OpenTelemetry span's context when there is one.
   */
  enqueue(request: ExecuteRequest, options?: JobsOptions): Promise<string>;
  /** Every event of the job from `fromSeq` on, in order, ending after its final terminal event. */
  events(jobId: string, options?: EventsOptions): AsyncGenerator<ExecuteEvent>;
  /** The ExecuteResult of the job once it completed or failed (waits for it). */
  result(jobId: string, options?: { timeoutMs?: number } | null): Promise<ExecuteResult>;
  /** Cancels a job wherever it runs; a job that has not started never will. */
  cancel(jobId: string, reason?: string): Promise<CancelOutcome>;
  /**
   * A token that lets a browser read this one job's events and state through the HTTP gateway
   * for `ttlSeconds`, signed with the gateway's secret (this call's, or the client's
   * `readTokenSecret`).
   */
  readToken(jobId: string, ttlSeconds: number, secret?: string): string;
  /**
   * The change the job's latest attempt made in its workspace (`git diff --binary` against
   * `base`, for `git apply`); null when the job has none (no workspace, or expired). Over
   * WORKSPACE_PATCH_MAX_BYTES, `truncated` is true and `patch` is only a summary.
   */
  patch(jobId: string): Promise<StoredPatch | null>;
  close(): Promise<void>;
}

/**
 * Defaults for enqueued jobs: finished jobs do not pile up in Redis forever. A kept job costs up
 * to about twice the worker's MAX_OUTPUT_BYTES (its result) plus its request: at most about
 * 400 MB for the 2 × 1,000 kept here with the worker's defaults (README: Redis memory).
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: { age: 7 * 24 * 3600, count: 1_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 1_000 },
};

export function createClient(options: ClientOptions = {}): ClaudeboxClient {
  const connection = openQueue(options, options.onError ?? (() => undefined));
  const { address, redis, queue } = connection;
  const subscriptions = new Subscriptions(redis, options.pubsub);

  return {
    // A caller in JavaScript may pass null for no options.
    enqueue: (request, jobOptions) => enqueueRequest(queue, request, jobOptions ?? {}),
    events: (jobId, eventOptions) =>
      jobEvents(redis, subscriptions, queue, address, jobId, eventOptions),
    result: (jobId, resultOptions) => waitForResult(queue, address.queueName, jobId, resultOptions),
    cancel: (jobId, reason = 'cancelled by request') =>
      cancelJob(redis, queue, address, jobId, reason),
    readToken: (jobId, ttlSeconds, secret = options.readTokenSecret) =>
      readToken(address.queueName, jobId, ttlSeconds, secret),
    patch: (jobId) => readPatch(redis, address, jobId),
    async close() {
      subscriptions.close();
      await connection.close();
    },
  };
}

async function enqueueRequest(
  queue: Queue,
  request: ExecuteRequest,
  options: JobsOptions,
): Promise<string> {
  const parsed = parseExecuteRequest(request);
  if (!parsed.ok) throw new ClaudeboxError('invalid-request', `invalid request: ${parsed.reason}`);
  const idProblem = options.jobId === undefined ? null : customJobIdProblem(options.jobId);
  const problem =
    idProblem ??
    nonFiniteOption(options, 'options') ??
    backoffProblem(options) ??
    priorityProblem(options);
  if (problem !== null) throw new ClaudeboxError('invalid-request', `invalid request: ${problem}`);
  const jobOptions = { ...DEFAULT_JOB_OPTIONS, ...withTraceContext(options) };
  const refusal = bullmqRefusal(queue, parsed.request, jobOptions);
  if (refusal !== null) throw new ClaudeboxError('invalid-request', `invalid request: ${refusal}`);
  const job = await queue.add('execute', parsed.request, jobOptions);
  if (job.id === undefined) throw new Error('BullMQ returned a job without an id');
  return job.id;
}

/** What a worker (jobIdProblem) or BullMQ itself would refuse of a job id the caller chose. */
function customJobIdProblem(jobId: unknown): string | null {
  // A caller in JavaScript can pass anything.
  if (typeof jobId !== 'string') return `jobId: must be a string, not ${typeof jobId}`;
  if (`${parseInt(jobId, 10)}` === jobId) {
    return `jobId: must not be a whole number (${jobId}): BullMQ numbers the jobs given no id so`;
  }
  // BullMQ's own form for the jobs of a repeatable job (<key>:<...>:<millis>) is the one allowed.
  if (jobId.includes(':') && jobId.split(':').length !== 3) return "jobId: must not contain ':'";
  if (BULLMQ_QUEUE_KEYS.has(jobId)) {
    return `jobId: ${JSON.stringify(jobId)} names one of BullMQ's own keys of the queue, which the job would be written over`;
  }
  // A URL's path reads these as "here" and "up": the gateway could never be asked for the job.
  if (jobId === '.' || jobId === '..') return `jobId: must not be ${JSON.stringify(jobId)}`;
  return jobIdProblem(jobId);
}

/**
 * What a worker could not retry the job after: a backoff of a kind that is not BullMQ's own
 * (a worker would need a strategy of that name, which claudebox's has not), or no number of ms.
 * BullMQ throws on it after each failed attempt, and the job waits for a stall check instead.
 */
function backoffProblem({ backoff }: JobsOptions): string | null {
  const given: unknown = backoff;
  if (given === undefined || typeof given === 'number') return null;
  if (typeof given !== 'object' || given === null) {
    return `options.backoff: must be a number of ms or { type: 'fixed' | 'exponential', delay }`;
  }
  const { type } = given as { type?: unknown };
  if (type === 'fixed' || type === 'exponential') return null;
  const named = type === undefined ? 'nothing' : JSON.stringify(type);
  return `options.backoff.type: must be 'fixed' or 'exponential', not ${named}`;
}

/** BullMQ's own bounds of a priority, which it throws on with a plain Error. */
function priorityProblem({ priority }: JobsOptions): string | null {
  if (priority === undefined) return null;
  return Number.isInteger(priority) && priority >= 0 && priority <= PRIORITY_LIMIT
    ? null
    : `options.priority: must be a whole number from 0 to ${PRIORITY_LIMIT}`;
}

/**
 * The first NaN or infinite number in the job's options (`delay: NaN`, say): BullMQ hands the
 * options to Redis, whose answer names none of them.
 */
function nonFiniteOption(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path}: must be finite`;
  if (value === null || typeof value !== 'object' || depth > MAX_OPTIONS_DEPTH) return null;
  for (const [key, inner] of Object.entries(value)) {
    const problem = nonFiniteOption(inner, `${path}.${key}`, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

/** Deeper than BullMQ's options go (repeat, backoff, parent...): what is there is not read. */
const MAX_OPTIONS_DEPTH = 4;

function readToken(
  queueName: string,
  jobId: string,
  ttlSeconds: number,
  secret: string | undefined,
): string {
  if (typeof jobId !== 'string' || jobId === '') {
    throw new TypeError('readToken: jobId must be a job id, a string that is not empty');
  }
  const idProblem = jobIdProblem(jobId);
  if (idProblem !== null) throw new TypeError(`readToken: ${idProblem}`);
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError('readToken: ttlSeconds must be a positive number of seconds');
  }
  if (secret === undefined || secret.length < MIN_READ_TOKEN_SECRET_LENGTH) {
    throw new TypeError(
      `readToken: needs the gateway's secret (GATEWAY_SECRET, at least ${MIN_READ_TOKEN_SECRET_LENGTH} characters), as readTokenSecret or the third argument`,
    );
  }
  const expiresAt = Math.ceil(Date.now() / 1000 + ttlSeconds);
  if (expiresAt > MAX_DATE_SECONDS) {
    throw new RangeError(
      `readToken: ttlSeconds must end by ${MAX_DATE_SECONDS} seconds after 1970, the last a token can carry`,
    );
  }
  return mintReadToken({ jobId, queueName, expiresAt }, secret);
}

/**
 * The options with the active span's context in BullMQ's place for it, so the worker's span of
 * each attempt joins the enqueuer's trace; options that say something of telemetry are kept.
 */
function withTraceContext(options: JobsOptions): JobsOptions {
  const metadata = options.telemetry ? undefined : traceMetadata();
  return metadata === undefined ? options : { ...options, telemetry: { metadata } };
}

/**
 * Marks the job cancelled for whichever worker takes it, and tells the one running it (if any)
 * to stop now.
 */
async function cancelJob(
  redis: RedisClient,
  queue: Queue,
  address: QueueAddress,
  jobId: string,
  reason: string,
): Promise<CancelOutcome> {
  // A caller in JavaScript can pass anything; a worker drops a message it cannot read.
  const given: Record<string, unknown> = { jobId, reason };
  const wrong = Object.keys(given).find((name) => typeof given[name] !== 'string');
  const problem =
    wrong === undefined
      ? null
      : `${wrong}: must be a string, not ${given[wrong] === null ? 'null' : typeof given[wrong]}`;
  if (problem !== null) throw new ClaudeboxError('invalid-request', `invalid request: ${problem}`);
  // The state first: it reads nothing but the queue's lists, where getJob would read a key of
  // the queue's own that an id such as `8:logs` names, and fail on its type.
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') return { jobId, outcome: 'not-found' };
  if (isFinished(state)) return { jobId, outcome: 'already-finished', state };
  const job = await queue.getJob(jobId);
  if (!job) return { jobId, outcome: 'not-found' };
  const marker: CancelMarker = { reason, at: new Date().toISOString() };
  const message: CancelMessage = { type: 'cancel', jobId, reason };
  await redis.set(
    cancelKey(address, jobId),
    JSON.stringify(marker),
    'EX',
    CANCEL_MARKER_TTL_SECONDS,
  );
  await redis.publish(controlChannel(address.queueName), JSON.stringify(message));
  // A delayed job would fail only when its delay is up; let a worker fail it now.
  if (state === 'delayed') await job.promote().catch(() => undefined);
  return state === 'active'
    ? { jobId, outcome: 'stopping', state }
    : { jobId, outcome: 'cancelled', state };
}
