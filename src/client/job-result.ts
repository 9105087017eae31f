import type { Job, Queue } from 'bullmq';
import { isRecord } from '../common/records.js';
import {
  readRunState,
  resultWithoutRun,
  type ExecuteResult,
  type FailureKind,
} from '../contract/index.js';
import { withTimeout } from '../common/time.js';
import { ClaudeboxError, jobNotFound } from './errors.js';

/**
 * How long a read of the job may take past the deadline: one that Redis answers counts (a
 * timeoutMs of 0 reads once); one Redis does not answer is given up.
 */
const READ_GRACE_MS = 1000;

/**
 * The job's ExecuteResult once it completed or failed, waiting up to `timeoutMs` for that, also
 * while Redis does not answer (the client's connection waits for Redis to come back).
 */
export async function waitForResult(
  queue: Queue,
  queueName: string,
  jobId: string,
  options: { timeoutMs?: number } | null = {},
): Promise<ExecuteResult> {
  const { timeoutMs = Infinity } = options ?? {};
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new ClaudeboxError(
      'invalid-request',
      `result: timeoutMs must be a number of milliseconds from 0 (or Infinity), not ${String(timeoutMs)}`,
    );
  }
  const deadline = Date.now() + timeoutMs;
  const timedOut = (): ClaudeboxError =>
    new ClaudeboxError('result-timeout', `job ${jobId} did not finish within ${timeoutMs} ms`);
  // Polling the job's state, not its event channel: a run may print gigabytes.
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    const reading = readResult(queue, queueName, jobId);
    const readFor = Math.max(deadline - Date.now(), READ_GRACE_MS);
    const result = await withTimeout(reading, readFor, timedOut);
    if (result) return result;
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut();
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, pause)));
  }
}

/**
 * The job's ExecuteResult, or null while it has not finished. Its state alone while it runs:
 * the job holds its prompt, up to megabytes, which a caller waiting on a long run would
 * otherwise read again at every poll.
 */
async function readResult(
  queue: Queue,
  queueName: string,
  jobId: string,
): Promise<ExecuteResult | null> {
  // State first, the job after: read the other way round, a job that ends in between would
  // look completed without its return value.
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') throw jobNotFound(jobId, queueName);
  const result = await readFinishedResult(queue, jobId, state);
  // Finished, but gone by the time the job was read.
  if (result === null && isFinished(state)) throw jobNotFound(jobId, queueName);
  return result;
}

/** Whether a job in `state` is over: completed, or failed for good. */
export const isFinished = (state: string): state is 'completed' | 'failed' =>
  state === 'completed' || state === 'failed';

/** Whether a job in `state` is over for its events: finished, or gone. */
export const isOver = (state: string): boolean => isFinished(state) || state === 'unknown';

/**
 * Whether a job whose history ends with a final event is over: false where it is back in the
 * queue or running, as after an operator's retry (BullMQ's puts a failed or completed job back),
 * whose attempt numbers its events on after that one. Also false in the moment between a final
 * event and its job's end, which a follower then sees at its next look at the job's state.
 */
export async function isOverAfterFinal(queue: Queue, jobId: string): Promise<boolean> {
  return isOver(await queue.getJobState(jobId));
}

/**
 * The ExecuteResult of a job whose state, read just before, is `state`: null unless it completed
 * or failed, or where it is gone since. The job itself, which holds its prompt and output, is
 * read only for a finished one.
 */
export async function readFinishedResult(
  queue: Queue,
  jobId: string,
  state: string,
): Promise<ExecuteResult | null> {
  if (!isFinished(state)) return null;
  const job = await queue.getJob(jobId);
  return job ? finishedResult(job, state) : null;
}

/** The ExecuteResult of a job in `state` (read before the job), or null while it runs. */
export function finishedResult(job: Job, state: string): ExecuteResult | null {
  if (state === 'completed') return storedResult(job);
  if (state !== 'failed') return null;
  const stored = readRunState(job.progress)?.result;
  if (stored) return stored;
  // Failed without a word from a worker (it stalled too often, say): the reason is all there is.
  return noRunResult(job, 'abandoned', job.failedReason || 'the job failed without a reason');
}

/**
 * A completed job's return value. One that is no ExecuteResult (the job was completed by
 * something else than a claudebox worker on this queue) is told as a failure naming what is
 * wrong: taken as "still running", it would keep a caller waiting for ever. Only what readers
 * rely on is checked, so that a result of an older or newer worker reads as it was stored.
 */
function storedResult(job: Job): ExecuteResult {
  const value: unknown = job.returnvalue;
  const wrong = isRecord(value) ? RELIED_ON.find(([, holds]) => !holds(value)) : null;
  if (wrong === undefined) return withOlderDefaults(value as Record<string, unknown>);
  const what = wrong === null ? 'it is no object' : `its ${wrong[0]} is missing or wrong`;
  return noRunResult(
    job,
    'worker-error',
    `the job completed, but its return value is not an ExecuteResult (${what}): was it completed by something other than a claudebox worker?`,
  );
}

/** A result of an older worker, with what later versions added as the contract says it reads. */
function withOlderDefaults(stored: Record<string, unknown>): ExecuteResult {
  const { workspace } = stored;
  return {
    stoppedAfterResult: false,
    ...stored,
    workspace: isRecord(workspace) ? { pathsOmitted: 0, ...workspace } : null,
  } as ExecuteResult;
}

/** What the client, the gateway and their callers read of every result. */
const RELIED_ON: readonly [string, (result: Record<string, unknown>) => boolean][] = [
  ['jobId', (result) => typeof result.jobId === 'string'],
  ['success', (result) => typeof result.success === 'boolean'],
  ['failure', (result) => result.failure === null || typeof result.failure === 'string'],
  ['lastSeq', (result) => Number.isSafeInteger(result.lastSeq) && (result.lastSeq as number) >= 0],
];

function noRunResult(job: Job, failure: FailureKind, error: string): ExecuteResult {
  return {
    ...resultWithoutRun({
      jobId: job.id ?? '',
      attempt: Math.max(1, job.attemptsStarted),
      failure,
      error,
      sessionId: null,
      retrying: false,
      startedAt: job.processedOn ?? job.timestamp,
    }),
    lastSeq: 0,
  };
}
