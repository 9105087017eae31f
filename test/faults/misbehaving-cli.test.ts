import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { readRunState } from '../../src/contract/index.js';
import { pidsWithEnv } from '../support/processes.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** A private copy of a fixture, so a case can take it away or make it unrunnable. */
function copyOf(name: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'claudebox-bin-')), 'claude');
  copyFileSync(fixture(name), path);
  chmodSync(path, 0o755);
  return path;
}

const cases: {
  name: string;
  bin: () => string;
  /** What happens to the CLI after the worker started (it checks the CLI at start). */
  spoil?: (bin: string) => void;
  reason: (bin: string) => string;
  failure: string;
}[] = [
  {
    name: 'is gone from CLAUDE_BIN',
    bin: () => copyOf('claude-success.mjs'),
    spoil: (bin) => rmSync(bin),
    reason: (bin) => `could not start claude: ${bin} does not exist`,
    failure: 'spawn-failed',
  },
  {
    name: 'is not executable',
    bin: () => copyOf('claude-success.mjs'),
    spoil: (bin) => chmodSync(bin, 0o644),
    reason: (bin) => `could not start claude: ${bin} is not executable`,
    failure: 'spawn-failed',
  },
  {
    name: 'exits before printing anything',
    bin: () => fixture('claude-silent-exit.mjs'),
    reason: () => 'claude exited with code 3 without a result line; it printed nothing on stdout',
    failure: 'cli-error',
  },
  {
    name: 'prints non-JSON and invalid UTF-8',
    bin: () => fixture('claude-garbage.mjs'),
    reason: () =>
      'claude exited with code 0 without a result line; 1 stdout line(s) were not JSON, the first: "Error: something is not right"; 1 stdout line(s) were not valid UTF-8',
    failure: 'cli-error',
  },
  {
    name: 'closes stdout but keeps running',
    bin: () => fixture('claude-closes-stdout.mjs'),
    reason: () => 'claude closed its stdout but kept running; it ignored SIGINT and was killed',
    failure: 'cli-error',
  },
];

describe('a CLI that misbehaves', () => {
  let worker: TestWorker | undefined;
  let queue: Queue | undefined;
  afterEach(async () => {
    await worker?.worker.shutdown(0);
    await queue?.obliterate({ force: true });
    await queue?.close();
  });

  it.each(cases)(
    'ends the job with a clear reason when it $name, and the worker goes on',
    async (c) => {
      const queueName = uniqueQueueName();
      queue = createQueue(redisUrl, queueName);
      const bin = c.bin();
      worker = await startTestWorker({ redisUrl, queueName, claudeBin: bin });
      c.spoil?.(bin);

      for (const round of [1, 2]) {
        const jobId = randomUUID();
        await queue.add('execute', { prompt: `round ${round}` }, { jobId, attempts: 1 });
        await waitFor('the job to fail', async () =>
          (await queue?.getJobState(jobId)) === 'failed' ? true : undefined,
        );
        const job = await queue.getJob(jobId);
        expect(job?.failedReason).toBe(c.reason(bin));
        expect(readRunState(job?.progress)?.result?.failure).toBe(c.failure);
        expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);
      }
      expect((await worker.worker.readiness()).ready).toBe(true);
    },
  );
});
