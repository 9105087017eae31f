import { Job, Queue, Worker, type JobProgress } from 'bullmq';

/**
 * What a job's data reads as where it is not JSON: something other than BullMQ wrote it into
 * Redis. BullMQ itself throws wherever it reads such a job: its worker would leave the job
 * active until a stall put it back, again and again, without a word to whoever waits on it, and
 * a page of jobs holding it would fail whole. Read as this, the job fails as an invalid request
 * naming why, and reads like any other meanwhile.
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
    json: FromJson[1],
    jobId?: string,
  ): Job<T, R, N> {
    try {
      return super.fromJSON<T, R, N>(queue, json, jobId);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      const job = super.fromJSON<T, R, N>(queue, { ...json, data: '{}' }, jobId);
      // The processor and readers look for this class; T stands for what the data should be.
      job.data = new UnreadableData(`it is not JSON (${error.message})`) as T;
      return job;
    }
  }
}

/** A BullMQ Queue whose jobs read as ReadableJob does. */
export class ReadableQueue extends Queue {
  protected override get Job(): typeof Job {
    return ReadableJob;
  }
}

/** A BullMQ Worker whose jobs read as ReadableJob does. */
export class ReadableWorker<DataType, ResultType> extends Worker<DataType, ResultType> {
  protected override get Job(): typeof Job {
    return ReadableJob;
  }
}
