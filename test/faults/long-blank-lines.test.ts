import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { fixture, uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');

// Each line is read where the worker judges a run; read with a pattern that backtracks, it held
// the worker's event loop for hours, and every job with it.
describe('a run that ends on a line of megabytes', () => {
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    worker?.child.kill('SIGTERM');
    await worker?.exited;
  });

  it('is judged from it, and the worker goes on to its next job', async () => {
    const queueName = uniqueQueueName();
    worker = spawnWorkerProcess({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-long-blanks.mjs'),
      CONCURRENCY: '1',
    });
    await worker.waitForLog('worker ready');
    const client = createClient({ url: redisUrl, queueName });
    try {
      const ids = { stderr: randomUUID(), result: randomUUID(), next: randomUUID() };
      for (const [prompt, jobId] of Object.entries(ids))
        await client.enqueue({ prompt }, { jobId });
      const timeoutMs = 60_000;

      const stderr = await client.result(ids.stderr, { timeoutMs });
      expect(stderr).toMatchObject({ success: false, failure: 'cli-error' });
      expect(stderr.error).toMatch(
        /^claude exited with code 1 without a result line; it printed nothing on stdout; last stderr line: "429 429 429 /,
      );
      expect(stderr.error).toHaveLength(1000);

      const result = await client.result(ids.result, { timeoutMs });
      expect(result).toMatchObject({ success: false, failure: 'cli-error' });
      // Its text as the result keeps it: head and tail within MAX_OUTPUT_BYTES, on one line.
      expect(result.error).toMatch(
        /^claude reported an error \(exited with code 1\): failed: \[\.\.\. \d+ bytes of output truncated \.\.\.\] here$/,
      );
      expect(result.finalOutputTruncated).toBe(true);

      expect(await client.result(ids.next, { timeoutMs })).toMatchObject({
        success: true,
        finalOutput: 'fine',
      });
    } finally {
      await client.close();
    }
  }, 120_000);
});
