import type { StopRequest } from '../executor/index.js';

/** Why a run was stopped from outside, beyond what the executor knows (cancel, shutdown). */
export type WorkerStopRequest = StopRequest;

/**
 * The runs in progress in this worker, each with the controller that stops it: a cancel from
 * any process, a graceful shutdown past its grace time, or a lost lock all come through here.
 */
export class ActiveRuns {
  private readonly runs = new Map<string, AbortController>();

  begin(jobId: string): AbortSignal {
    const controller = new AbortController();
    this.runs.set(jobId, controller);
    return controller.signal;
  }

  end(jobId: string): void {
    this.runs.delete(jobId);
  }

  /** Stops a run of this worker; false when this worker runs no such job. */
  stop(jobId: string, request: WorkerStopRequest): boolean {
    const controller = this.runs.get(jobId);
    if (!controller) return false;
    if (!controller.signal.aborted) controller.abort(request);
    return true;
  }

  stopAll(request: WorkerStopRequest): void {
    for (const jobId of this.runs.keys()) this.stop(jobId, request);
  }

  ids(): string[] {
    return [...this.runs.keys()];
  }

  get size(): number {
    return this.runs.size;
  }
}
