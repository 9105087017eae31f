import { Job, type JobsOptions, type Queue } from 'bullmq';
import { errorMessage } from '../common/errors.js';

/**
 * BullMQ's own check of a job's options (a `sizeLimit` the data exceeds, options it takes only
 * one of, a deduplication without an id...), run before anything is written. BullMQ throws a
 * plain Error from `add` for these; the client turns what this returns into a bad request.
 */
export function bullmqRefusal(queue: Queue, data: unknown, options: JobsOptions): string | null {
  // The same merge as Queue.addJob's, so that the queue's defaults are checked as well.
  const merged = { ...queue.jobsOpts, ...options, jobId: options.jobId };
  if (merged.jobId === '0' || merged.jobId?.startsWith('0:') === true) {
    return "jobId: must not be '0' or start with '0:' (BullMQ refuses it)";
  }
  try {
    new CheckedJob(queue, data, merged).check();
    return null;
  } catch (error) {
    return `options: ${errorMessage(error)} (BullMQ refuses it)`;
  }
}

class CheckedJob extends Job {
  constructor(queue: Queue, data: unknown, options: JobsOptions) {
    super(queue, 'execute', data, options, options.jobId);
  }

  check(): void {
    this.validateOptions(this.asJSON());
  }
}
