import type { Worker } from 'bullmq';
import type { Isolation } from '../../isolation/index.js';
import { withTimeout } from '../../common/time.js';
import type { WorkerConnections } from '../../redis/connections.js';
import type { Readiness } from './health.js';
import { errorMessage } from '../../common/errors.js';

/** `/readyz`: Redis answers, the worker consumes, and how its runs are isolated. */
export function readinessOf(
  worker: Worker,
  connections: WorkerConnections,
  isolation: Isolation['summary'],
): () => Promise<Readiness> {
  return async () => {
    const checks: Record<string, boolean | string> = {};
    checks.consuming = worker.isRunning() && !worker.closing;
    try {
      // The blocking client's promise can stay pending while Redis is away: /readyz must answer.
      const pending = worker.backend.blockingClient ?? Promise.resolve(undefined);
      const blocking = await withTimeout(pending, 1000).catch(() => undefined);
      checks.blockingConnection = blocking?.status === 'ready';
      await withTimeout(connections.commands.ping(), 1000);
      checks.redis = true;
    } catch (error) {
      checks.redis = errorMessage(error);
    }
    checks.events = connections.events.status === 'ready';
    return {
      ready: Object.values(checks).every((value) => value === true),
      checks,
      isolation,
    };
  };
}
