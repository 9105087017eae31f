import type { ExecuteEvent, ExecuteResult, RunState } from '../../contract/index.js';
import { isFinalEvent } from '../../contract/index.js';
import type { AttemptCounters } from './attempts.js';

/**
 * The result a job ended with for good before a stall put it back in the queue, or null where
 * it did not. An attempt records its end on the job (the run state's final result) before
 * BullMQ hears of it: a worker that died in between, or lost the job's lock meanwhile, leaves a
 * job that is over but active, which BullMQ's stall check sends back to the queue, counting one
 * stall more than the end recorded. Run again, it would run twice, also after a cancel. A retry
 * from queue tooling counts no stall, and runs.
 */
export function endedAlready(
  job: Pick<AttemptCounters, 'stalledCounter'>,
  prior: RunState | null,
  newest: ExecuteEvent | null,
): ExecuteResult | null {
  const result = prior?.result;
  const stalls = prior?.endedAtStall;
  if (!result || result.retrying || stalls === undefined || job.stalledCounter <= stalls) {
    return null;
  }
  // A success's run state keeps it without its output, which its final event still has.
  const final = newest !== null && isFinalEvent(newest) ? newest.data : null;
  return final !== null && final.attempt === result.attempt ? final : result;
}
