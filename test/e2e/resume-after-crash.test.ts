import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import type { StartedEvent } from '../../src/contract/index.js';
import { startStandIn } from '../../tools/stand-in/index.js';
import { eventually, pidsWithEnv, runPids } from '../support/processes.js';
import { RealCliMachines } from '../support/real-cli-machines.js';
import type { WorkerProcess } from '../support/worker-process.js';
import { createQueue, uniqueQueueName, waitFor, collectEvents } from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('a retry after the worker died', () => {
  let machines: RealCliMachines | undefined;
  afterEach(async () => {
    expect(await machines?.stop()).toEqual([]);
  });

  it('resumes the same Claude session on another machine, which sends the earlier turns', async () => {
    const standIn = await startStandIn();
    const queueName = uniqueQueueName();
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    const workDir = await realpath(mkdtempSync(join(tmpdir(), 'claudebox-work-')));
    // Two machines: each worker has a HOME and CLAUDE_CONFIG_DIR of its own.
    machines = new RealCliMachines(standIn.url);
    const worker = (): Promise<WorkerProcess> =>
      (machines as RealCliMachines).start({
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        WORK_DIR: workDir,
        LOCK_DURATION_SECONDS: '2',
        // The default SESSION_SYNC_SECONDS: the transcript is shipped as it grows.
      });
    try {
      const a = await worker();
      const jobId = randomUUID();
      const prompt = [
        'Wait for the slow step, then report.',
        'stand-in: bash echo slow-step-started && sleep 600',
        'stand-in: say Resumed after the slow step.',
      ].join('\n');
      await client.enqueue({ prompt, allowedTools: ['Bash'] }, { jobId, attempts: 2 });
      // The worker dies 2 s into the Bash tool's run.
      await waitFor('the sleep', () => (runPids(jobId).length >= 3 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 2000));

      a.child.kill('SIGKILL');
      await a.exited;
      expect(
        await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 3000),
      ).toBe(true);
      standIn.clearRequests();

      await worker();
      const result = await client.result(jobId, { timeoutMs: 60_000 });

      expect(result).toMatchObject({
        success: true,
        attempt: 2,
        resumed: true,
        finalOutput: 'Resumed after the slow step.',
      });
      const events = await collectEvents(client.events(jobId));
      const starts = events.filter((e): e is StartedEvent => e.type === 'started');
      expect(starts.map((e) => [e.attempt, e.data.resumed, e.data.prompt])).toEqual([
        [1, false, 'original'],
        [2, true, 'continue'],
      ]);
      expect(result.sessionId).toBe(starts[0]?.data.sessionId);

      // Worker B's CLI sent the conversation of worker A's: the prompt and the tool call,
      // and the prompt only once.
      const sent = JSON.stringify(standIn.requests[0]?.body);
      expect(sent).toContain('echo slow-step-started');
      expect(sent.split('Wait for the slow step, then report.').length - 1).toBe(1);
      expect(sent).toContain('The previous attempt at this task was interrupted');
      // And the tool did not run again: attempt 2 called no tool at all.
      const toolCalls = events.filter(
        (e) => e.type === 'output' && e.attempt === 2 && e.content.includes('"tool_use"'),
      );
      expect(toolCalls).toEqual([]);
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
      await standIn.close();
    }
  });
});
