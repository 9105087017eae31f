import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

// Two workers of one host share RUN_ROOT and WORK_DIR. The first, frozen past the job's lock,
// still holds the job's working directory while the second takes the job over.
describe('a job whose worker lost its lock, taken over on the same host', () => {
  const workers: WorkerProcess[] = [];
  let top: string | undefined;
  afterEach(async () => {
    for (const worker of workers) {
      worker.child.kill('SIGCONT');
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    if (top !== undefined) rmSync(top, { recursive: true, force: true });
  });

  it('runs its next attempt once the first gives the working directory back', async () => {
    top = mkdtempSync(join(tmpdir(), 'claudebox-lost-lock-'));
    // The runs' uids pass through it to their working directory.
    chmodSync(top, 0o755);
    mkdirSync(join(top, 'work', 'repo'), { recursive: true });
    const queueName = uniqueQueueName();
    const start = async (): Promise<WorkerProcess> => {
      const worker = spawnWorkerProcess({
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-slow.mjs'),
        WORK_DIR: join(top ?? '', 'work'),
        RUN_ROOT: join(top ?? '', 'run-root'),
        RUN_ISOLATION: 'required',
        RUN_UID_BASE: '57500',
        RUN_UID_COUNT: '4',
        LOCK_DURATION_SECONDS: '2',
      });
      workers.push(worker);
      await worker.waitForLog('worker ready');
      return worker;
    };
    const client = createClient({ url: redisUrl, queueName });
    try {
      const first = await start();
      const jobId = randomUUID();
      await client.enqueue({ prompt: 'sleep 6', workingDir: 'repo' }, { jobId, attempts: 2 });
      await waitFor('the run to start', async () =>
        (await collectEvents(client.events(jobId, { follow: false }))).length > 1
          ? true
          : undefined,
      );
      await start();

      // Past the lock: the second worker takes the job while the first's run holds "repo".
      first.child.kill('SIGSTOP');
      await sleep(6000);
      first.child.kill('SIGCONT');

      const result = await client.result(jobId, { timeoutMs: 90_000 });
      expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'slept 6s' });
      const milestones = (await collectEvents(client.events(jobId)))
        .filter((event) => event.type !== 'output')
        .map((event) => `${event.attempt}:${event.type}`);
      expect(milestones).toEqual(['1:started', '1:failed', '2:started', '2:completed']);
    } finally {
      await client.close();
    }
  }, 120_000);
});
