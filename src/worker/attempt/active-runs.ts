import type { StopRequest } from '../../executor/index.js';

interface Run {
  readonly controller: AbortController;
  /** When the job's lock was last known to be held (taken or renewed). */
  lockedAt: number;
}

/**
 * The runs in progress in this worker, each with the controller that stops it: a cancel from
 * any process, a graceful shutdown past its grace time, or a lost lock all come through here.
 */
export class ActiveRuns {
  private readonly runs = new Map<string, Run>();
  /** Set by stopAll: a run that begins afterwards (a job fetched as shutdown began) stops at once. */
  private stopEverything: StopRequest | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  begin(jobId: string): AbortSignal {
    const controller = new AbortController();
    this.runs.set(jobId, { controller, lockedAt: this.now() });
    if (this.stopEverything) controller.abort(this.stopEverything);
    return controller.signal;
  }

  /** Forgets a run, unless another attempt of the same job has begun here since. */
  end(jobId: string, signal: AbortSignal): void {
    if (this.runs.get(jobId)?.controller.signal === signal) this.runs.delete(jobId);
  }

  has(jobId: string): boolean {
    return this.runs.has(jobId);
  }

  /** Whether this worker's run of the job is being stopped already. */
  stopping(jobId: string): boolean {
    return this.runs.get(jobId)?.controller.signal.aborted === true;
  }

  /** Stops a run of this worker; false when this worker runs no such job. */
  stop(jobId: string, request: StopRequest): boolean {
    const run = this.runs.get(jobId);
    if (!run) return false;
    if (!run.controller.signal.aborted) run.controller.abort(request);
    return true;
  }

  stopAll(request: StopRequest): void {
    this.stopEverything = request;
    for (const jobId of this.runs.keys()) this.stop(jobId, request);
  }

  /** The job locks were renewed just now. */
  lockRenewed(jobIds: readonly string[]): void {
    for (const jobId of jobIds) {
      const run = this.runs.get(jobId);
      if (run) run.lockedAt = this.now();
    }
  }

  /**
   * Jobs whose lock has not been renewed for longer than `lockMs`: it has expired by now. A run
   * being stopped already is not named: it is on its way out.
   */
  unlocked(lockMs: number): string[] {
    const now = this.now();
    return [...this.runs]
      .filter(([, run]) => now - run.lockedAt > lockMs && !run.controller.signal.aborted)
      .map(([jobId]) => jobId);
  }

  ids(): string[] {
    return [...this.runs.keys()];
  }

  get size(): number {
    return this.runs.size;
  }
}
