import type { ExecuteResult } from '../../contract/index.js';
import { Attempt, describeReason } from './attempt.js';
import type { ExecuteJob, JobContext } from './context.js';

/**
 * The BullMQ processor: one attempt of an execute job. It declares the third `signal`
 * parameter so that BullMQ passes one (Worker#cancelJob reaches the run through it).
 */
export function createProcessor(context: JobContext) {
  return (job: ExecuteJob, token?: string, signal?: AbortSignal): Promise<ExecuteResult> =>
    context.tracing
      ? processTraced(context, job, token, signal)
      : processJob(context, job, token, signal);
}

async function processJob(
  context: JobContext,
  job: ExecuteJob,
  token: string | undefined,
  signal: AbortSignal | undefined,
  onBegun?: (attempt: Attempt) => void,
): Promise<ExecuteResult> {
  const attempt = await Attempt.begin(context, job, token);
  onBegun?.(attempt);
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

/** The attempt inside its span, which ends with the attempt's result (or error). */
async function processTraced(
  context: JobContext,
  job: ExecuteJob,
  token: string | undefined,
  signal: AbortSignal | undefined,
): Promise<ExecuteResult> {
  let result: ExecuteResult | null = null;
  const traced: JobContext = {
    ...context,
    onFinished: (finished) => {
      result = finished;
      context.onFinished?.(finished);
    },
  };
  let trace: ReturnType<NonNullable<JobContext['tracing']>['begin']> | undefined;
  try {
    const value = await processJob(traced, job, token, signal, (attempt) => {
      trace = context.tracing?.begin(job, attempt.number);
    });
    trace?.end(result);
    return value;
  } catch (error) {
    trace?.end(result, error);
    throw error;
  }
}
