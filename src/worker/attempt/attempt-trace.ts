import type { Job } from 'bullmq';
import type { ExecuteResult } from '../../contract/index.js';

/** Traces attempts (OpenTelemetry, in the runtime); a worker without it traces nothing. */
export interface AttemptTracing {
  /** Starts the attempt's span, a child of the enqueuer's when the job carries its context. */
  begin(job: Job<unknown, ExecuteResult>, attempt: number): AttemptTrace;
}

export interface AttemptTrace {
  /**
   * Ends the span with how the attempt ended: its result when it has one (it always has,
   * except when the job was lost to another worker), else the error it ended with.
   */
  end(result: ExecuteResult | null, error?: unknown): void;
}
