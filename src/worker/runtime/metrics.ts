import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { doneWithin } from '../../common/time.js';
import type { ExecuteResult } from '../../contract/index.js';
import type { RunDiskUse } from '../../isolation/index.js';

/** The worker's own Prometheus metrics, in a registry of its own (tests run many workers). */
export function createMetrics(sample: { activeRuns: () => number; bufferedBytes: () => number }) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'claudebox_' });
  const attempts = new Counter({
    name: 'claudebox_attempts_finished_total',
    help: 'Attempts of execute jobs that ended, by outcome and failure kind.',
    labelNames: ['outcome', 'failure'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'claudebox_attempt_duration_seconds',
    help: 'How long the claude CLI ran per attempt.',
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
    registers: [registry],
  });
  const dropped = counter(
    registry,
    'claudebox_events_dropped_total',
    'Output events dropped because Redis was unreachable and the event buffer was full.',
  );
  const publishErrors = counter(
    registry,
    'claudebox_event_publish_errors_total',
    'Failed attempts to write events to Redis (each is retried).',
  );
  gauge(registry, 'claudebox_runs_active', 'claude runs in progress in this worker.', () =>
    sample.activeRuns(),
  );
  gauge(
    registry,
    'claudebox_event_buffer_bytes',
    'Events waiting in memory to be written to Redis.',
    () => sample.bufferedBytes(),
  );
  return {
    registry,
    attemptFinished(result: ExecuteResult): void {
      attempts.inc({
        outcome: result.success ? 'completed' : 'failed',
        failure: result.failure ?? 'none',
      });
      if (result.durationMs > 0) duration.observe(result.durationMs / 1000);
    },
    eventsDropped(count: number): void {
      dropped.inc(count);
    },
    publishError(): void {
      publishErrors.inc();
    },
    ...workspaceMetrics(registry),
    ...runDiskMetrics(registry),
  };
}

function counter(registry: Registry, name: string, help: string): Counter {
  return new Counter({ name, help, registers: [registry] });
}

function workspaceMetrics(registry: Registry) {
  const clones = counter(
    registry,
    'claudebox_workspace_clones_total',
    'Workspace sources this worker cloned into its cache (later jobs fetch them, never clone again).',
  );
  // Set by the workspace sweep: walking the directories at every scrape would cost too much.
  const bytes = new Gauge({
    name: 'claudebox_workspace_disk_bytes',
    help: 'Disk used in WORKSPACE_DIR by part: cached clones (cache) and job checkouts beyond the objects they share with the cache (checkouts); measured by the periodic sweep.',
    labelNames: ['part'],
    registers: [registry],
  });
  const checkpoints = new Histogram({
    name: 'claudebox_workspace_checkpoint_seconds',
    help: "How long storing a checkpoint of a job's workspace took (git add, diff and the patch's write to Redis), taken after each tool the CLI reports done.",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    workspaceCloned(): void {
      clones.inc();
    },
    workspaceCheckpoint(seconds: number): void {
      checkpoints.observe(seconds);
    },
    workspaceDiskUse(use: { checkoutBytes: number; cacheBytes: number }): void {
      bytes.set({ part: 'checkouts' }, use.checkoutBytes);
      bytes.set({ part: 'cache' }, use.cacheBytes);
    },
  };
}

function runDiskMetrics(registry: Registry) {
  // Set by the scratch sweep, as the workspace sweep sets the workspace's.
  const bytes = new Gauge({
    name: 'claudebox_run_disk_bytes',
    help: "Disk used in RUN_ROOT by part: the working directories of jobs that name none (scratch) and runs' homes (homes); measured by the periodic scratch sweep of a worker that isolates runs.",
    labelNames: ['part'],
    registers: [registry],
  });
  return {
    runDiskUse(use: RunDiskUse): void {
      bytes.set({ part: 'scratch' }, use.scratchBytes);
      bytes.set({ part: 'homes' }, use.homesBytes);
    },
  };
}

/** A gauge read at scrape time. */
function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

export type WorkerMetrics = ReturnType<typeof createMetrics>;

/**
 * `sample`, taken again at most every `maxAgeMs` and one at a time: callers meanwhile share the
 * sample under way, waiting for it at most `waitMs` (Redis away), else get the last one. So
 * scrapes cost Redis a bounded number of commands, however many there are.
 */
export function sampledAtMostEvery(
  sample: () => Promise<string>,
  maxAgeMs: number,
  waitMs: number,
  now: () => number = Date.now,
): () => Promise<string> {
  let last = '';
  let takenAt = -Infinity;
  let pending: Promise<void> | null = null;
  // With no earlier answer to give, the first one is worth waiting longer for, by the first
  // caller: with Redis away from the start, later callers would each wait as long in vain.
  let firstWaitMs = 5 * waitMs;
  return async () => {
    if (pending === null && now() - takenAt >= maxAgeMs) {
      pending = sample()
        .then((value) => {
          last = value;
        })
        // A failed sample keeps the last one; the next is due after maxAgeMs all the same.
        .catch(() => undefined)
        .finally(() => {
          takenAt = now();
          pending = null;
        });
    }
    const patienceMs = firstWaitMs;
    firstWaitMs = waitMs;
    if (pending !== null) await doneWithin(pending, patienceMs);
    return last;
  };
}
