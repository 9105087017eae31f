import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import {
  CANCEL_MARKER_TTL_SECONDS,
  cancelKey,
  controlChannel,
  parseExecuteRequest,
  type CancelMarker,
  type CancelMessage,
  type ExecuteEvent,
  type ExecuteRequest,
  type ExecuteResult,
  type QueueAddress,
} from '../contract/index.js';
import { traceMetadata } from '../common/trace-context.js';
import { ClaudeboxError } from './errors.js';
import { jobEvents, type EventsOptions } from './event-stream.js';
import { waitForResult } from './job-result.js';

export interface ClientOptions {
  /** An ioredis connection to use (the client does not close it), or... */
  readonly connection?: Redis;
  /** ...a Redis URL to connect to. Default redis://127.0.0.1:6379. */
  readonly url?: string;
  /** Default "claudebox", as the worker's QUEUE_NAME. */
  readonly queueName?: string;
  /** BullMQ's key prefix, as the worker's QUEUE_PREFIX. Default "bull". */
  readonly prefix?: string;
  /**
   * Connection trouble while Redis is away (the client reconnects by itself and calls wait
   * meanwhile). Ignored by default.
   */
  readonly onError?: (error: Error) => void;
}

export type CancelOutcome =
  /** The job is running: its worker stops the run now and fails the job as cancelled. */
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
  result(jobId: string, options?: { timeoutMs?: number }): Promise<ExecuteResult>;
  /** Cancels a job wherever it runs; a job that has not started never will. */
  cancel(jobId: string, reason?: string): Promise<CancelOutcome>;
  close(): Promise<void>;
}

/** Defaults for enqueued jobs: finished jobs do not pile up in Redis forever. */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: { age: 7 * 24 * 3600, count: 10_000 },
  removeOnFail: { age: 30 * 24 * 3600, count: 10_000 },
};

export function createClient(options: ClientOptions = {}): ClaudeboxClient {
  const address: QueueAddress = {
    prefix: options.prefix ?? 'bull',
    queueName: options.queueName ?? 'claudebox',
  };
  const owned = options.connection === undefined;
  const redis =
    options.connection ??
    new Redis(options.url ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const queue = new Queue(address.queueName, { connection: redis, prefix: address.prefix });
  const onError = options.onError ?? (() => undefined);
  queue.on('error', onError);
  if (owned) redis.on('error', onError);

  return {
    enqueue: (request, jobOptions = {}) => enqueueRequest(queue, request, jobOptions),
    events: (jobId, eventOptions) => jobEvents(redis, queue, address, jobId, eventOptions),
    result: (jobId, resultOptions) => waitForResult(queue, address.queueName, jobId, resultOptions),
    cancel: (jobId, reason = 'cancelled by request') =>
      cancelJob(redis, queue, address, jobId, reason),
    async close() {
      await queue.close();
      if (owned) await redis.quit();
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
  const job = await queue.add('execute', parsed.request, {
    ...DEFAULT_JOB_OPTIONS,
    ...withTraceContext(options),
  });
  if (job.id === undefined) throw new Error('BullMQ returned a job without an id');
  return job.id;
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
  redis: Redis,
  queue: Queue,
  address: QueueAddress,
  jobId: string,
  reason: string,
): Promise<CancelOutcome> {
  const job = await queue.getJob(jobId);
  if (!job) return { jobId, outcome: 'not-found' };
  const state = await job.getState();
  if (state === 'completed' || state === 'failed')
    return { jobId, outcome: 'already-finished', state };
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
