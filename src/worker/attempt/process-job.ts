import type { ExecuteResult } from '../../contract/index.js';
import { Attempt, describeReason } from './attempt.js';
import type { ExecuteJob, JobContext } from './context.js';

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
  const attempt = await Attempt.begin(context, job, token);
  const onBullCancel = (): void => {
    const message = describeReason(signal?.reason);
    context.runs.stop(attempt.jobId, { cause: 'cancelled', message });
  };
  // A cancel may have come while the attempt was being set up.
  if (signal?.aborted) onBullCancel();
  else signal?.addEventListener('abort', onBullCancel, { once: true });
  try {
    const ending = await attempt.run();
    if (ending.kind === 'throw') throw ending.error;
    return ending.result;
  } finally {
    signal?.removeEventListener('abort', onBullCancel);
    await attempt.cleanup();
  }
}
