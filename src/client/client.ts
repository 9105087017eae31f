import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import {
  CANCEL_MARKER_TTL_SECONDS,
  cancelKey,
  controlChannel,
  parseExecuteRequest,
  readRunState,
  resultWithoutRun,
  type CancelMarker,
  type CancelMessage,
  type ExecuteEvent,
  type ExecuteRequest,
  type ExecuteResult,
  type QueueAddress,
} from '../contract/index.js';
import { ClaudeboxError } from './errors.js';
import { jobEvents, type EventsOptions } from './event-stream.js';

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
  /** Validates the request (throwing ClaudeboxError 'invalid-request' naming each bad field) and enqueues it. */
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

  const readResult = async (jobId: string): Promise<ExecuteResult | null> => {
    // State first, the job after: read the other way round, a job that ends in between would
    // look completed without its return value.
    const state = await queue.getJobState(jobId);
    const job = await queue.getJob(jobId);
    if (state === 'unknown' || !job) {
      throw new ClaudeboxError(
        'job-not-found',
        `job ${jobId} not found in queue ${address.queueName}`,
      );
    }
    if (state === 'completed') return job.returnvalue as ExecuteResult;
    if (state !== 'failed') return null;
    const stored = readRunState(job.progress)?.result;
    if (stored) return stored;
    // Failed without a word from a worker (it stalled too often, say): the reason is all there is.
    return {
      ...resultWithoutRun({
        jobId,
        attempt: Math.max(1, job.attemptsStarted),
        failure: 'abandoned',
        error: job.failedReason || 'the job failed without a reason',
        sessionId: null,
        retrying: false,
        startedAt: job.processedOn ?? job.timestamp,
      }),
      lastSeq: 0,
    };
  };

  return {
    async enqueue(request, jobOptions = {}) {
      const parsed = parseExecuteRequest(request);
      if (!parsed.ok)
        throw new ClaudeboxError('invalid-request', `invalid request: ${parsed.reason}`);
      const job = await queue.add('execute', parsed.request, {
        ...DEFAULT_JOB_OPTIONS,
        ...jobOptions,
      });
      if (job.id === undefined) throw new Error('BullMQ returned a job without an id');
      return job.id;
    },

    events(jobId, eventOptions) {
      return jobEvents(redis, queue, address, jobId, eventOptions);
    },

    async result(jobId, { timeoutMs = Infinity } = {}) {
      const deadline = Date.now() + timeoutMs;
      // Polling the job's state, not its event channel: a run may print gigabytes.
      for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
        const result = await readResult(jobId);
        if (result) return result;
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new ClaudeboxError(
            'result-timeout',
            `job ${jobId} did not finish within ${timeoutMs} ms`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, pause)));
      }
    },

    async cancel(jobId, reason = 'cancelled by request') {
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
    },

    async close() {
      await queue.close();
      if (owned) await redis.quit();
    },
  };
}
