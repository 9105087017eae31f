import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { eventually, pidsWithEnv } from '../support/processes.js';
import { startRedisServer, type RedisServer } from '../support/redis-server.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { fixture, uniqueQueueName, waitFor } from '../support/worker.js';

describe('a SIGTERM while Redis is away', () => {
  let redis: RedisServer | undefined;
  let worker: WorkerProcess | undefined;

  afterEach(async () => {
    if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
      worker.child.kill('SIGKILL');
      await worker.exited;
    }
    await redis?.close();
  });

  it('stops the worker by itself: its run stopped, nothing left, exit code 0', async () => {
    redis = await startRedisServer();
    const queueName = uniqueQueueName();
    worker = spawnWorkerProcess({
      REDIS_URL: redis.url,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-slow.mjs'),
      SHUTDOWN_GRACE_SECONDS: '2',
      KILL_GRACE_SECONDS: '0.5',
    });
    await worker.waitForLog('worker ready');
    const client = createClient({ url: redis.url, queueName });
    const jobId = randomUUID();
    try {
      await client.enqueue({ prompt: 'sleep 600' }, { jobId, attempts: 1 });
      await waitFor('the run', () => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)[0]);
    } finally {
      await client.close();
    }

    await redis.stop();
    await waitFor('the worker to see Redis gone', () =>
      worker?.logs.some((log) => log.msg === 'Redis connection lost; retrying') ? true : undefined,
    );
    worker.child.kill('SIGTERM');
    const code = await worker.exited;

    // It stops by itself: not by the command's last resort, which gives a shutdown its grace,
    // KILL_GRACE_SECONDS and 20 s more, then exits 1 however far the shutdown got.
    expect(code).toBe(0);
    expect(worker.logs.map((log) => log.msg)).toEqual(
      expect.arrayContaining([
        'stopping runs and requeueing their jobs',
        'Redis does not answer: the worker stops without it',
        'worker stopped',
      ]),
    );
    expect(worker.logs.map((log) => log.msg)).not.toContain(
      'shutdown did not finish in time (is Redis reachable?); exiting',
    );
    expect(await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 5000)).toBe(
      true,
    );
  }, 90_000);
});
