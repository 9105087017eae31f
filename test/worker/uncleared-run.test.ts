import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { setUpIsolation, type Isolation, type RunBox } from '../../src/isolation/index.js';
import { oneCommitRepository } from '../support/git.js';
import {
  collectEvents,
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/**
 * The worker's own isolation, but every box's close reports a process of the run still there,
 * as it does when one outlived every kill (in an uninterruptible wait on a hung file system):
 * no run a test can start does that. The uid itself was cleared all the same, so what would go
 * once it is cleared goes at once.
 */
async function isolationWithUnclearedRuns(
  settings: Parameters<typeof setUpIsolation>[0],
): Promise<Isolation> {
  const isolation = await setUpIsolation(settings);
  return {
    ...isolation,
    open: async (spec) => {
      const box = await isolation.open(spec);
      const uncleared: RunBox = Object.create(box, {
        runGone: { get: () => false },
        removeOnceCleared: {
          value: (...paths: string[]) => {
            for (const path of paths) rmSync(path, { recursive: true, force: true });
          },
        },
      });
      return uncleared;
    },
  };
}

describe('a run with a workspace, a process of which may still be there when it ends', () => {
  let root: string;
  let source: string;
  let queueName: string;
  let queue: Queue;
  let client: ClaudeboxClient;
  let worker: TestWorker;

  beforeEach(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'claudebox-uncleared-')));
    source = oneCommitRepository(root);
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    client = createClient({ url: redisUrl, queueName });
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-files.mjs'),
      env: { WORKSPACE_SOURCES: source },
      setUpIsolation: isolationWithUnclearedRuns,
    });
    expect(worker.worker.isolation.mode).toBe('uid');
  });

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(worker.workDir, { recursive: true, force: true });
  });

  it("has its change left unread: no workspace in its result, its last checkpoint the job's patch, its checkout kept", async () => {
    const jobId = randomUUID();
    const ask = { write: { 'draft.txt': 'first draft\n' }, toolResult: true, gate: '.git/hold' };
    await queue.add(
      'execute',
      { prompt: JSON.stringify(ask), workspace: { source, ref: 'main' } },
      {
        jobId,
      },
    );
    await waitFor('a checkpoint of the running job', async () => {
      const stored = await client.patch(jobId);
      return stored?.patch.toString().includes('+first draft') ? stored : undefined;
    });
    const started = await waitFor('the started event', async () => {
      const history = await collectEvents(client.events(jobId, { follow: false }));
      return history.find((event) => event.type === 'started');
    });
    // What a process of the run left after the last checkpoint: a look at the checkout now
    // would put it in the change.
    const checkout = started.data.cwd;
    writeFileSync(join(checkout, 'late.txt'), 'written after the last checkpoint\n');
    rmSync(join(checkout, '.git', 'hold'));

    const result = await client.result(jobId, { timeoutMs: 30_000 });
    expect(result.success).toBe(true);
    expect(result.workspace).toBeNull();
    const patch = (await client.patch(jobId))?.patch.toString() ?? '';
    expect(patch).toContain('+first draft');
    expect(patch).not.toContain('late.txt');
    const unread = worker.logs.find(
      (record) => record.msg === "did not read the change in the job's checkout",
    );
    expect(unread).toMatchObject({ jobId, dir: checkout });
    await waitFor(
      'the attempt to let go of its checkout',
      () => worker.logs.some((record) => record.msg === "kept the job's checkout") || undefined,
    );
    expect(existsSync(join(checkout, 'late.txt'))).toBe(true);
  });
});
