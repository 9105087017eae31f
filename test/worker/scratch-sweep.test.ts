import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { loadConfig } from '../../src/config/config.js';
import { scratchDirs } from '../../src/isolation/scratch-dirs.js';
import { findFreePort } from '../support/redis-server.js';
import {
  createQueue,
  fixture,
  partGauge,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const MiB = 1024 * 1024;
/** The scratch directories of the default RUN_ROOT, which the test workers share. */
const scratch = scratchDirs(join(loadConfig({}).RUN_ROOT, 'scratch'), () => Promise.resolve(null));

const runDiskBytes = (worker: TestWorker, part: string) =>
  partGauge(worker, 'claudebox_run_disk_bytes', part);

describe('the scratch directory of a job that never comes back', () => {
  let queue: Queue | undefined;
  let worker: TestWorker | undefined;

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    await queue?.obliterate({ force: true });
    await queue?.close();
  });

  it('goes with the next sweep once its job is removed while it waits for its next attempt, not before', async () => {
    const name = uniqueQueueName();
    queue = createQueue(redisUrl, name);
    worker = await startTestWorker({
      redisUrl,
      queueName: name,
      claudeBin: fixture('claude-files.mjs'),
      env: {
        RUN_ISOLATION: 'required',
        SCRATCH_SWEEP_SECONDS: '1',
        HEALTH_PORT: String(await findFreePort()),
        HEALTH_HOST: '127.0.0.1',
      },
    });
    // Two jobs whose first attempt fails, half done, with their next attempt an hour away.
    const ask = { write: { 'work.txt': 'half done\n', 'data.txt': 'x'.repeat(MiB) }, exitCode: 1 };
    const retryLater = { attempts: 2, backoff: { type: 'fixed', delay: 3_600_000 } };
    const dirs = new Map<string, string>();
    for (const jobId of ['removed', 'waiting']) {
      await queue.add('execute', { prompt: JSON.stringify(ask) }, { ...retryLater, jobId });
      dirs.set(jobId, scratch.scratchDir(`bull:${name}:${jobId}`));
    }
    const on = queue;
    await waitFor('both jobs to wait for their next attempt', async () =>
      (await on.getDelayedCount()) === 2 ? true : undefined,
    );
    const work = (jobId: string) => join(dirs.get(jobId) ?? '', 'work.txt');
    expect(readFileSync(work('removed'), 'utf8')).toBe('half done\n');
    expect(readFileSync(work('waiting'), 'utf8')).toBe('half done\n');
    // What they hold is counted in /metrics by the next sweep (other tests' runs share RUN_ROOT).
    const kept = 2 * statSync(join(dirs.get('waiting') ?? '', 'data.txt')).blocks * 512;
    expect(kept).toBeGreaterThanOrEqual(2 * MiB);
    const measured = worker;
    await waitFor('the sweep to count the kept files', async () => {
      const bytes = await runDiskBytes(measured, 'scratch');
      return bytes !== undefined && bytes >= kept ? true : undefined;
    });
    expect(await runDiskBytes(measured, 'homes')).toBeGreaterThanOrEqual(0);

    await queue.remove('removed');
    await waitFor('the sweep to remove the removed job’s directory', () =>
      existsSync(dirs.get('removed') ?? '') ? undefined : true,
    );
    // The sweeps since have left the waiting job's files for its next attempt.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(readFileSync(work('waiting'), 'utf8')).toBe('half done\n');
    expect(worker.logs).toContainEqual(
      expect.objectContaining({
        msg: 'removed the scratch directories of jobs that are over or gone',
        removed: 1,
      }),
    );

    // Its queue emptied, the other goes too.
    await queue.obliterate({ force: true });
    await waitFor('the sweep to remove the waiting job’s directory', () =>
      existsSync(dirs.get('waiting') ?? '') ? undefined : true,
    );
  }, 60_000);
});
