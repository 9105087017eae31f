import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { doneWithin } from '../../common/time.js';
import type { ExecuteResult } from '../../contract/index.js';

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
  const dropped = new Counter({
    name: 'claudebox_events_dropped_total',
    help: 'Output events dropped because Redis was unreachable and the event buffer was full.',
    registers: [registry],
  });
  const publishErrors = new Counter({
    name: 'claudebox_event_publish_errors_total',
    help: 'Failed attempts to write events to Redis (each is retried).',
    registers: [registry],
  });
  new Gauge({
    name: 'claudebox_runs_active',
    help: 'claude runs in progress in this worker.',
    registers: [registry],
    collect() {
      this.set(sample.activeRuns());
    },
  });
  new Gauge({
    name: 'claudebox_event_buffer_bytes',
    help: 'Events waiting in memory to be written to Redis.',
    registers: [registry],
    collect() {
      this.set(sample.bufferedBytes());
    },
  });
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
  };
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
    // With no earlier answer to give, the first one is worth waiting longer for.
    if (pending !== null) await doneWithin(pending, takenAt === -Infinity ? 5 * waitMs : waitMs);
    return last;
  };
}
