import { Job, Queue, Worker, type JobProgress } from 'bullmq';
import { BULLMQ_QUEUE_KEYS } from '../contract/index.js';
import {
  activeJobLockedBy,
  isUnreadableJob,
  LEFT_OUT,
  readJobFieldByField,
  removeUnreadableParent,
  type JobFields,
} from './job-fields.js';
import { isCounterError } from './job-counters.js';

/**
 * What a job's data reads as where it is not JSON, or where a field of the job cannot be read at
 * all (too long for a string, or `opts` that are not JSON, say): something other than BullMQ
 * wrote it into Redis. BullMQ itself throws wherever it reads such a job: its worker would leave
 * the job active until a stall put it back, again and again, without a word to whoever waits on
 * it, and a page of jobs holding it would fail whole. Read as this, the job fails as an invalid
 * request naming why, and reads like any other meanwhile.
 */
export class UnreadableData {
  constructor(readonly reason: string) {}

  /** How the gateway shows the job's request. */
  toJSON(): { unreadable: string } {
    return { unreadable: this.reason };
  }
}

type FromJson = Parameters<typeof Job.fromJSON>;

class ReadableJob<D, R, N extends string, P extends JobProgress> extends Job<D, R, N, P> {
  static override fromJSON<T, R, N extends string>(
    queue: FromJson[0],
    json: JobFields,
    jobId?: string,
  ): Job<T, R, N> {
    let reason = json[LEFT_OUT]?.reason;
    if (reason === undefined) {
      try {
        return super.fromJSON<T, R, N>(queue, json, jobId);
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
        reason = `it is not JSON (${error.message})`;
      }
    }
    const job = super.fromJSON<T, R, N>(queue, { ...json, data: '{}' }, jobId);
    // The processor and readers look for this class; T stands for what the data should be.
    job.data = new UnreadableData(reason) as T;
    return job;
  }

  static override async fromId<T, R, N extends string>(
    queue: FromJson[0],
    jobId: string,
  ): Promise<Job<T, R, N> | undefined> {
    try {
      return await super.fromId<T, R, N>(queue, jobId);
    } catch (error) {
      if (!isUnreadableJob(error)) throw error;
      const fields = await readJobFieldByField(queue, jobId);
      return fields && this.fromJSON<T, R, N>(queue, fields, jobId);
    }
  }
}

type JobType = Parameters<Queue['getRanges']>[0][number];

/** What BullMQ's getJobs lists where it is given no state. */
const EVERY_STATE: readonly JobType[] = [
  'active',
  'completed',
  'delayed',
  'failed',
  'prioritized',
  'waiting',
  'waiting-children',
];

/**
 * A BullMQ Queue whose jobs read as ReadableJob does. An id that names one of the queue's own
 * keys is no job (enqueue refuses it): BullMQ would read that key as a job's hash and fail.
 */
export class ReadableQueue extends Queue {
  protected override get Job(): typeof Job {
    return ReadableJob;
  }

  override async getJob(jobId: string): ReturnType<Queue['getJob']> {
    return BULLMQ_QUEUE_KEYS.has(jobId) ? undefined : super.getJob(jobId);
  }

  override async getJobState(jobId: string): ReturnType<Queue['getJobState']> {
    return BULLMQ_QUEUE_KEYS.has(jobId) ? 'unknown' : super.getJobState(jobId);
  }

  /**
   * BullMQ lists a page of jobs by reading each whole in one reply: where one has a field that
   * cannot be read, the page is listed again by id, each job read as ReadableJob reads it.
   */
  override async getJobs(
    types?: JobType[] | JobType,
    start = 0,
    end = -1,
    asc = false,
  ): ReturnType<Queue['getJobs']> {
    try {
      return await super.getJobs(types, start, end, asc);
    } catch (error) {
      if (!isUnreadableJob(error)) throw error;
      const given = typeof types === 'string' ? [types] : types;
      const ids = await this.getRanges(given?.length ? given : [...EVERY_STATE], start, end, asc);
      const jobs = await Promise.all(ids.map((id) => this.getJob(id)));
      return jobs.filter((job) => job !== undefined);
    }
  }
}

/** A BullMQ Worker whose jobs read as ReadableJob does. */
export class ReadableWorker<DataType, ResultType> extends Worker<DataType, ResultType> {
  protected override get Job(): typeof Job {
    return ReadableJob;
  }

  /**
   * Where a field of the job just taken (on its own, or with the end of the one before) cannot be
   * read, Redis has made it this worker's, active and locked with `token`, but no Job of it came
   * back: it is read again field by field, and goes to the processor as unreadable.
   */
  private async orUnreadable(
    token: string,
    take: () => Promise<Job<DataType, ResultType>>,
    ending?: Job<DataType, ResultType>,
  ): Promise<Job<DataType, ResultType>> {
    try {
      return await take();
    } catch (error) {
      // Taking a job whose attempts started (`ats`) is no whole number fails once the job is
      // this worker's: it goes to the processor, which fails it saying so (see repairCounters).
      const counters = isCounterError(error);
      if (!isUnreadableJob(error) && !counters) throw error;
      const jobId = await activeJobLockedBy(this, token);
      // The job that was ending, where its end did not go through, is not the one taken.
      if (jobId === undefined || jobId === ending?.id) throw error;
      const fields = await readJobFieldByField(this, jobId);
      const leftOut = fields?.[LEFT_OUT];
      // A job that reads whole is not the one that failed to.
      if (fields === undefined || (leftOut === undefined && !counters)) throw error;
      if (leftOut !== undefined) await removeUnreadableParent(this, jobId, leftOut);
      return this.nextJobFromJobData(fields, jobId, token);
    }
  }

  protected override moveToActive(token: string, name?: string) {
    return this.orUnreadable(token, () => super.moveToActive(token, name));
  }

  protected override handleCompleted(
    ...args: Parameters<Worker<DataType, ResultType>['handleCompleted']>
  ) {
    return this.orUnreadable(args[2], () => super.handleCompleted(...args), args[1]);
  }

  protected override handleFailed(
    ...args: Parameters<Worker<DataType, ResultType>['handleFailed']>
  ) {
    return this.orUnreadable(args[2], () => super.handleFailed(...args), args[1]);
  }
}
