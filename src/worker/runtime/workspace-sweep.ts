import type { Logger } from 'pino';
import type { Workspaces } from '../../workspace/index.js';
import type { WorkerMetrics } from './metrics.js';
import { repeatEvery } from './repeat.js';

/**
 * Sweeps WORKSPACE_DIR once now (what a worker that crashed left goes before any job runs) and
 * then every `everyMs`, one sweep at a time; each reports the disk use to /metrics. Returns the
 * stop, which waits for a sweep under way.
 */
export async function startWorkspaceSweep(
  workspaces: Workspaces,
  everyMs: number,
  metrics: WorkerMetrics,
  logger: Logger,
): Promise<() => Promise<void>> {
  const once = async (): Promise<void> => {
    try {
      metrics.workspaceDiskUse(await workspaces.sweep());
    } catch (error) {
      logger.warn({ err: error }, 'could not sweep the workspace directory');
    }
  };
  await once();
  return repeatEvery(once, everyMs);
}
