import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { eventually, pidsWithCommandLine, pidsWithEnv, runPids } from '../support/processes.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  createQueue,
  fixture,
  uniqueQueueName,
  waitFor,
  collectEvents,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('a worker killed with SIGKILL mid-run', () => {
  const processes: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null)
        worker.child.kill('SIGKILL');
      await worker.exited;
    }
  });

  it('leaves nothing of its run going, and another worker takes the job over once the lock expires', async () => {
    const queueName = uniqueQueueName();
    const env = {
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-slow.mjs'),
      LOCK_DURATION_SECONDS: '2',
    };
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    try {
      // A run that ignores signals and leaves a grandchild in its own session: only the
      // watchdog can stop it once its worker is gone.
      const first = spawnWorkerProcess({ ...env, CLAUDE_BIN: fixture('claude-stubborn.mjs') });
      processes.push(first);
      await first.waitForLog('worker ready');
      const jobId = randomUUID();
      // The crash spends the first attempt; the second is the takeover.
      await client.enqueue({ prompt: 'sleep 1' }, { jobId, attempts: 2 });
      await waitFor('the run and its grandchild', () =>
        runPids(jobId).length >= 2 ? true : undefined,
      );

      first.child.kill('SIGKILL');
      await first.exited;
      // The watchdog notices the worker is gone and stops its runs: nothing may double-execute.
      expect(
        await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 3000),
      ).toBe(true);

      const second = spawnWorkerProcess(env);
      processes.push(second);
      await second.waitForLog('worker ready');
      const result = await client.result(jobId, { timeoutMs: 30_000 });
      expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'slept 1s' });

      const events = await collectEvents(client.events(jobId));
      const seqs = events.map((e) => e.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
      const milestones = events
        .filter((e) => e.type !== 'output')
        .map((e) => `${e.attempt}:${e.type}`);
      expect(milestones).toEqual(['1:started', '1:failed', '2:started', '2:completed']);
      const abandoned = events.find((e) => e.type === 'failed');
      expect(abandoned?.type === 'failed' && abandoned.data).toMatchObject({
        failure: 'abandoned',
        retrying: true,
      });
      // The session id fixed before attempt 1 is the one attempt 2 used.
      const starts = events.filter((e) => e.type === 'started');
      expect(starts[1]?.type === 'started' && starts[1].data.sessionId).toBe(
        starts[0]?.type === 'started' ? starts[0].data.sessionId : 'missing',
      );
      expect(result.sessionId).toBe(
        starts[0]?.type === 'started' ? starts[0].data.sessionId : 'missing',
      );
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('whose watchdog was killed before it still leaves nothing of its run: the watchdog was replaced', async () => {
    const queueName = uniqueQueueName();
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    try {
      // Not isolated: no sandbox ends with the worker, only its watchdog stops the run.
      const worker = spawnWorkerProcess({
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-stubborn.mjs'),
        RUN_ISOLATION: 'off',
      });
      processes.push(worker);
      const ready = await worker.waitForLog('worker ready');
      // Only the watchdog has the worker's id on its command line.
      const watchdogs = (): number[] => pidsWithCommandLine(String(ready.workerId));
      const [first] = watchdogs();
      expect(first).toEqual(expect.any(Number));
      process.kill(first ?? 0, 'SIGKILL');
      const logged = await worker.waitForLog(
        "the watchdog ended before the worker: starting another, as nothing would stop this worker's runs if it died",
      );
      expect(logged).toMatchObject({ level: 50, signal: 'SIGKILL' });
      await waitFor('another watchdog', () =>
        watchdogs().some((pid) => pid !== first) ? true : undefined,
      );

      const jobId = randomUUID();
      await client.enqueue({ prompt: 'sleep 1' }, { jobId });
      await waitFor('the run and its grandchild', () =>
        runPids(jobId).length >= 2 ? true : undefined,
      );
      worker.child.kill('SIGKILL');
      await worker.exited;
      expect(
        await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 3000),
      ).toBe(true);
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
