import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteResult } from '../../src/contract/index.js';
import { startRedisLink } from '../support/redis-link.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

// Two workers of one host share RUN_ROOT and WORK_DIR. The first, frozen or cut off from Redis
// past the job's lock, still holds the job's working directory as the second takes the job over.
describe('a job whose worker lost its lock, taken over on the same host', () => {
  const workers: WorkerProcess[] = [];
  let top: string | undefined;
  afterEach(async () => {
    for (const worker of workers) {
      worker.child.kill('SIGCONT');
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    workers.length = 0;
    if (top !== undefined) rmSync(top, { recursive: true, force: true });
  });

  /** A worker of the host, on `url` (its own link to Redis, say), with a 2 s job lock. */
  const start = async (
    queueName: string,
    url = redisUrl,
    claudeBin = fixture('claude-slow.mjs'),
  ): Promise<WorkerProcess> => {
    const worker = spawnWorkerProcess({
      REDIS_URL: url,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: claudeBin,
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

  beforeEach(() => {
    top = mkdtempSync(join(tmpdir(), 'claudebox-lost-lock-'));
    // The runs' uids pass through it to their working directory.
    chmodSync(top, 0o755);
    mkdirSync(join(top, 'work', 'repo'), { recursive: true });
  });

  /** Enqueues a job of 6 s in "repo", and waits for its run to print. */
  const enqueueRun = async (client: ClaudeboxClient): Promise<string> => {
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'sleep 6', workingDir: 'repo' }, { jobId, attempts: 2 });
    await waitFor('the run to start', async () =>
      (await collectEvents(client.events(jobId, { follow: false }))).length > 1 ? true : undefined,
    );
    return jobId;
  };

  const milestones = async (client: ClaudeboxClient, jobId: string): Promise<string[]> =>
    (await collectEvents(client.events(jobId)))
      .filter((event) => event.type !== 'output')
      .map((event) => `${event.attempt}:${event.type}`);

  it('runs its next attempt once the first, frozen, gives the working directory back', async () => {
    const queueName = uniqueQueueName();
    const client = createClient({ url: redisUrl, queueName });
    try {
      const first = await start(queueName);
      const jobId = await enqueueRun(client);
      await start(queueName);

      // Past the lock: the second worker takes the job while the first's run holds "repo".
      first.child.kill('SIGSTOP');
      await sleep(6000);
      first.child.kill('SIGCONT');

      const result = await client.result(jobId, { timeoutMs: 90_000 });
      expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'slept 6s' });
      expect(await milestones(client, jobId)).toEqual([
        '1:started',
        '1:failed',
        '2:started',
        '2:completed',
      ]);
    } finally {
      await client.close();
    }
  }, 120_000);

  /**
   * The first worker, on a link of its own to Redis, runs `prompt` in "repo"; once the run
   * started, the link is cut and the second worker starts. The milestones seen (all but output),
   * and the result, once the next attempt started with the link still cut.
   */
  const takenOverWhileCutOff = async (
    claudeBin: string,
    prompt: string,
  ): Promise<{ milestones: string[]; result: ExecuteResult }> => {
    const queueName = uniqueQueueName();
    const client = createClient({ url: redisUrl, queueName });
    const link = await startRedisLink(redisUrl);
    try {
      await start(queueName, link.url, claudeBin);
      const jobId = randomUUID();
      await client.enqueue({ prompt, workingDir: 'repo' }, { jobId, attempts: 2 });
      const seen: string[] = [];
      const following = (async () => {
        for await (const event of client.events(jobId)) {
          if (event.type !== 'output') seen.push(`${event.attempt}:${event.type}`);
        }
      })();
      await waitFor('the run to start', () => (seen.includes('1:started') ? true : undefined));
      link.cut();
      await start(queueName, redisUrl, claudeBin);

      // Past the lock, the first worker stops its run, and gives "repo" back with Redis away.
      await waitFor(
        'the next attempt to start, the first worker still cut off',
        () => (seen.includes('2:started') ? true : undefined),
        30_000,
      );
      link.restore();
      const result = await client.result(jobId, { timeoutMs: 90_000 });
      await following;
      return { milestones: seen, result };
    } finally {
      link.restore();
      await client.close();
      await link.close();
    }
  };

  it('runs its next attempt while the first worker, cut off from Redis, still waits on it', async () => {
    // A flood: once the link is cut, the first worker's reading of it waits on Redis.
    const { milestones, result } = await takenOverWhileCutOff(
      fixture('claude-flood.mjs'),
      'flood 200',
    );
    expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'flooded 200 MiB' });
    expect(milestones.filter((milestone) => !milestone.endsWith(':gap'))).toEqual([
      '1:started',
      '1:failed',
      '2:started',
      '2:completed',
    ]);
  }, 120_000);

  it('runs its next attempt while the first worker, cut off from Redis, still ships its session', async () => {
    // A transcript that grows: once the link is cut, the first worker's shipping of it waits.
    const { milestones, result } = await takenOverWhileCutOff(
      fixture('claude-transcript.mjs'),
      JSON.stringify({ holdMs: 10_000, appendEveryMs: 100 }),
    );
    expect(result).toMatchObject({ success: true, attempt: 2 });
    // The first attempt's shipping sent before the link was cut lands once it is back, past
    // the lock: it is refused, and the retry's own shipping goes on (it said "no longer saved").
    expect(milestones).toEqual(['1:started', '1:failed', '2:started', '2:completed']);
  }, 120_000);
});
