import type { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { describeProcesses, eventually, pidsWithEnv } from '../support/processes.js';
import {
  createQueue,
  fixture,
  numberJobsApart,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';
import { CliProcesses } from './support.js';

const redisUrl = inject('redisUrl');

/** SIGINT to a `claudebox run --follow` process, as Ctrl-C without a terminal sends it. */
describe('Ctrl-C on claudebox run --follow', () => {
  let queueName: string;
  let env: Record<string, string>;
  let client: ClaudeboxClient;
  let queue: Queue;
  let worker: TestWorker;
  const processes = new CliProcesses();

  beforeEach(async () => {
    queueName = uniqueQueueName();
    env = { REDIS_URL: redisUrl, QUEUE_NAME: queueName };
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
    await numberJobsApart(redisUrl, queue);
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture('claude-slow.mjs') });
  });

  afterEach(async () => {
    const leftovers = await processes.reap();
    await worker.worker.shutdown(0);
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
    expect(leftovers, 'claudebox processes still running after the test').toEqual([]);
  });

  const finalState = (jobId: string) =>
    waitFor('the job to end', async () => {
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? state : undefined;
    });

  it('with --on-interrupt cancel stops the run, shows it failed as cancelled, and exits 130', async () => {
    const run = processes.spawn(['run', '--follow', '--on-interrupt', 'cancel', 'sleep 30'], env);
    const [, jobId = ''] = await run.waitForStdout(/^▶ job (\S+) attempt 1 started/m);
    await waitFor('the claude process', () =>
      pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length > 0 ? true : undefined,
    );
    run.child.kill('SIGINT');

    expect(await run.exited).toBe(130);
    expect(await finalState(jobId)).toBe('failed');
    expect(await client.result(jobId, { timeoutMs: 0 })).toMatchObject({
      cancelled: true,
      failure: 'cancelled',
      error: 'cancelled: interrupted from the claudebox command line (Ctrl-C)',
    });
    expect(run.stderr()).toBe(`claudebox: job ${jobId} is running: its worker is stopping it\n`);
    expect(run.stdout()).toMatch(
      /\n✗ failed: cancelled: interrupted from the claudebox command line \(Ctrl-C\)\n$/,
    );
    const gone = await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 5000);
    const left = describeProcesses(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId));
    expect(gone, `processes of the job still there: ${left}`).toBe(true);
  });

  it('cancels by default when there is no terminal to ask at', async () => {
    const run = processes.spawn(['run', '--follow', 'sleep 30'], env);
    const [, jobId = ''] = await run.waitForStdout(/^▶ job (\S+) attempt 1 started/m);
    run.child.kill('SIGINT');

    expect(await run.exited).toBe(130);
    expect(await finalState(jobId)).toBe('failed');
    expect(await client.result(jobId, { timeoutMs: 0 })).toMatchObject({ cancelled: true });
  });

  it('with --on-interrupt detach leaves the run going and says how to follow it again', async () => {
    const run = processes.spawn(['run', '--follow', '--on-interrupt', 'detach', 'sleep 30'], env);
    const [, jobId = ''] = await run.waitForStdout(/^▶ job (\S+) attempt 1 started/m);
    run.child.kill('SIGINT');

    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(
      new RegExp(
        `^claudebox: detached; job ${jobId} keeps running\\. Follow it again with: ` +
          `claudebox events ${jobId} --from \\d+\\n$`,
      ),
    );
    expect(await queue.getJobState(jobId)).toBe('active');
    expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length).toBeGreaterThan(0);

    await client.cancel(jobId, 'test over');
    expect(await finalState(jobId)).toBe('failed');
  });
});
