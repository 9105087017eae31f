import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { JOB_LOG_LINES_PER_ATTEMPT } from '../../src/worker/attempt/job-log.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe("the job's log (Bull Board's Logs tab)", () => {
  let queueName: string;
  let queue: Queue;
  let worker: TestWorker | undefined;

  beforeEach(() => {
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    worker = undefined;
    await queue.obliterate({ force: true });
    await queue.close();
  });

  async function runJob(bin: string, prompt: string, attempts = 1): Promise<string> {
    worker ??= await startTestWorker({ redisUrl, queueName, claudeBin: fixture(bin) });
    const job = await queue.add('execute', { prompt }, { attempts });
    const jobId = job.id ?? '';
    await waitFor(`job ${jobId} to finish`, async () => {
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? state : undefined;
    });
    return jobId;
  }

  const logsOf = async (jobId: string): Promise<string[]> =>
    (await queue.getJobLogs(jobId, 0, -1)).logs;

  it('shows the start with pid and session, each tool call by name, and the terminal line', async () => {
    const jobId = await runJob('claude-tools.mjs', 'tools 3');
    const logs = await logsOf(jobId);
    const job = await queue.getJob(jobId);

    expect(logs).toHaveLength(5);
    expect(logs[0]).toMatch(/^attempt 1 started: pid \d+, session [0-9a-f-]{36}$/);
    expect(logs[0]).toContain(job?.returnvalue.sessionId);
    expect(logs.slice(1, 4)).toEqual(['tool call: Bash', 'tool call: Read', 'tool call: Grep']);
    expect(logs[4]).toMatch(/^attempt 1 completed in \d+\.\d s, 4 turns, \$0\.0123$/);
  });

  it(`keeps to ${JOB_LOG_LINES_PER_ATTEMPT} lines an attempt, counting the tool calls left out`, async () => {
    const jobId = await runJob('claude-tools.mjs', 'tools 120');
    const logs = await logsOf(jobId);

    expect(logs).toHaveLength(JOB_LOG_LINES_PER_ATTEMPT);
    const logged = logs.filter((line) => line.startsWith('tool call: ')).length;
    expect(logs.at(-2)).toBe(`... and ${120 - logged} more tool calls (see the job's events)`);
    expect(logs.at(-1)).toMatch(/^attempt 1 completed in /);
  });

  it('says why each attempt failed, and that another follows', async () => {
    const jobId = await runJob('claude-api-error.mjs', 'fail', 2);
    const logs = await logsOf(jobId);

    const terminal = logs.filter((line) => / failed \(/.test(line));
    expect(terminal).toHaveLength(2);
    expect(terminal[0]).toMatch(/^attempt 1 failed \(cli-error\) after .*; retrying$/);
    expect(terminal[1]).toMatch(/^attempt 2 failed \(cli-error\) after /);
    expect(terminal[1]).not.toContain('retrying');
  });

  it('never fails the attempt when the log cannot be written', async () => {
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-tools.mjs'),
    });
    const redis = new Redis(redisUrl);
    try {
      // A key of the wrong type where the log goes: every write to the log fails.
      await redis.set(`bull:${queueName}:broken:logs`, 'not a list');
      await queue.add('execute', { prompt: 'tools 2' }, { jobId: 'broken' });
      const state = await waitFor('the job to finish', async () => {
        const now = await queue.getJobState('broken');
        return now === 'completed' || now === 'failed' ? now : undefined;
      });

      expect(state).toBe('completed');
      const warnings = worker.logs.filter((log) => String(log.msg).includes("the job's log"));
      expect(warnings).toHaveLength(1);
    } finally {
      await redis.quit();
    }
  });
});
