import { randomUUID } from 'node:crypto';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { readRunState, type ExecuteEvent } from '../../src/contract/index.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  subscribeToEvents,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const TOOL_HINT = 'is not a tool name such as "Bash" or "Bash(git diff:*)"';

/** Job data that must fail at once, and the one-line reason it must fail with. */
const cases: { name: string; data: unknown; reason: string }[] = [
  {
    name: 'a string',
    data: 'run something',
    reason: 'job data: must be a JSON object, got string',
  },
  { name: 'null', data: null, reason: 'job data: must be a JSON object, got null' },
  { name: 'an array', data: ['prompt'], reason: 'job data: must be a JSON object, got an array' },
  { name: 'no prompt', data: { workingDir: '.' }, reason: 'prompt: is required' },
  { name: 'an empty prompt', data: { prompt: '   ' }, reason: 'prompt: must not be empty' },
  {
    name: 'a 10 MiB prompt, over the cap',
    data: { prompt: 'x'.repeat(10 * 1024 * 1024) },
    reason: 'prompt: is 10485760 bytes, over the limit of 4194304 (MAX_PROMPT_BYTES)',
  },
  {
    name: 'wrong types',
    data: { prompt: 42, timeout: '10', allowedTools: 'Bash', maxTurns: 1.5 },
    reason:
      'prompt: must be a string; allowedTools: must be a list of tool names; timeout: must be a number of seconds; maxTurns: must be an integer',
  },
  {
    name: 'a million tool rules, which checking one by one held the worker up for seconds',
    data: { prompt: 'hi', allowedTools: Array<string>(1_000_000).fill('') },
    reason: 'allowedTools: must name at most 1024 tool rules',
  },
  {
    name: '100,000 unknown fields, named up to twenty and then counted',
    data: {
      prompt: 'hi',
      ...Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 1])),
    },
    reason: `${Array.from({ length: 20 }, (_, i) => `k${i}: unknown field`).join('; ')}; and 99980 more`,
  },
  {
    name: 'a tool rule of 1,100 characters, quoted cut, and the problems after it',
    data: { prompt: 'hi', allowedTools: [`${'x'.repeat(1100)}!`], timeout: -1, foo: 1 },
    reason: `allowedTools.0: "${'x'.repeat(140)}...; timeout: must be a positive number of seconds; foo: unknown field`,
  },
  {
    name: 'workingDir ../..',
    data: { prompt: 'hi', workingDir: '../..' },
    reason: 'workingDir: "../.." resolves to {outside}, outside WORK_DIR {workDir}',
  },
  {
    name: 'an absolute workingDir outside WORK_DIR',
    data: { prompt: 'hi', workingDir: '/etc' },
    reason: 'workingDir: "/etc" resolves to /etc, outside WORK_DIR {workDir}',
  },
  {
    name: 'a symlink inside WORK_DIR that points out',
    data: { prompt: 'hi', workingDir: 'escape' },
    reason: 'workingDir: "escape" resolves to /tmp, outside WORK_DIR {workDir}',
  },
  {
    name: 'a missing workingDir',
    data: { prompt: 'hi', workingDir: 'not/there' },
    reason: 'workingDir: "not/there" does not exist (looked for {workDir}/not/there)',
  },
  {
    name: 'a tool that is really a flag',
    data: { prompt: 'hi', allowedTools: ['Read', '--dangerously-skip-permissions'] },
    reason: `allowedTools.1: "--dangerously-skip-permissions" ${TOOL_HINT}`,
  },
  {
    name: 'a tool with a newline',
    data: { prompt: 'hi', disallowedTools: ['Bash\n--yolo'] },
    reason: `disallowedTools.0: "Bash\\n--yolo" ${TOOL_HINT}`,
  },
  {
    name: 'tool rules too long together for one command-line argument',
    data: { prompt: 'hi', allowedTools: Array(1000).fill(`Bash(${'x'.repeat(100)}:*)`) },
    reason: 'allowedTools: must be at most 65536 bytes, joined by commas',
  },
  {
    name: 'an unknown permissionMode',
    data: { prompt: 'hi', permissionMode: 'yolo' },
    reason:
      'permissionMode: must be one of acceptEdits, auto, bypassPermissions, default, dontAsk, manual, plan',
  },
  {
    name: 'a permissionMode the operator does not allow',
    data: { prompt: 'hi', permissionMode: 'bypassPermissions' },
    reason:
      'permissionMode: bypassPermissions is not allowed on this worker (ALLOWED_PERMISSION_MODES=acceptEdits,auto,default,dontAsk,manual,plan)',
  },
  {
    name: 'a timeout over the operator’s cap',
    data: { prompt: 'hi', timeout: 90000 },
    reason: 'timeout: 90000 seconds is over the limit of 86400 (MAX_TIMEOUT_SECONDS)',
  },
  {
    name: 'WORK_DIR itself as the working directory of an isolated run',
    data: { prompt: 'hi', workingDir: '.' },
    reason:
      'workingDir: "." is WORK_DIR itself, which every job shares; with run isolation a job works in a directory inside it (or, naming none, in one of its own)',
  },
  {
    name: 'a resumeSessionId that is not a UUID',
    data: { prompt: 'hi', resumeSessionId: '../../etc/passwd' },
    reason: 'resumeSessionId: must be a UUID',
  },
  {
    name: 'an unknown field',
    data: { prompt: 'hi', promt: 'typo' },
    reason: 'promt: unknown field',
  },
];

describe('bad job data', () => {
  let worker: TestWorker;
  let queueName: string;
  let queue: Queue;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
    });
    mkdirSync(join(worker.workDir, 'inside'));
    symlinkSync('/tmp', join(worker.workDir, 'escape'));
  });

  afterAll(async () => {
    await worker.worker.shutdown(0);
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it.each(cases)(
    'fails $name at once, with no retry and no process, naming what is wrong',
    async ({ data, reason }) => {
      const jobId = randomUUID();
      const subscription = await subscribeToEvents(redisUrl, queueName, jobId);
      try {
        await queue.add('execute', data, { jobId, attempts: 3 });
        await waitFor('the job to fail', async () =>
          (await queue.getJobState(jobId)) === 'failed' ? true : undefined,
        );
        const job = await queue.getJob(jobId);
        const expected = `invalid job data: ${reason
          .replace('{workDir}', worker.workDir)
          .replace('{outside}', join(worker.workDir, '../..'))}`;

        expect(job?.failedReason).toBe(expected);
        expect(job?.failedReason).not.toContain('\n');
        expect(job?.attemptsMade).toBe(1);
        const events: ExecuteEvent[] = await waitFor('the failed event', () =>
          subscription.events.length > 0 ? subscription.events : undefined,
        );
        expect(events.map((e) => e.type)).toEqual(['failed']);
        expect(readRunState(job?.progress)?.result).toMatchObject({
          failure: 'invalid-request',
          exitCode: null,
          durationMs: 0,
          error: expected,
        });
        expect(worker.logs.some((log) => log.msg === 'job started' && log.jobId === jobId)).toBe(
          false,
        );
      } finally {
        await subscription.close();
      }
    },
  );

  // Both failed at spawn before, as spawn-failed, attempt after attempt: a 200,000-character id
  // with E2BIG, naming nothing.
  it.each([
    [
      'is too long for its events and its run',
      `job-${'x'.repeat(300)}`,
      'jobId: is 304 characters, over the limit of 256',
    ],
    [
      'holds a control character, which its run’s environment cannot',
      `job-${randomUUID()}\u0000x`,
      'jobId: must not contain control characters',
    ],
  ])('fails a job whose id %s, naming what is wrong', async (_what, jobId, reason) => {
    await queue.add('execute', { prompt: 'hi' }, { jobId, attempts: 3 });
    await waitFor('the job to fail', async () =>
      (await queue.getJobState(jobId)) === 'failed' ? true : undefined,
    );
    const job = await queue.getJob(jobId);
    expect(job?.failedReason).toBe(`invalid job: ${reason}`);
    expect(job?.attemptsMade).toBe(1);
    expect(readRunState(job?.progress)?.result).toMatchObject({ failure: 'invalid-request' });
    expect(worker.logs.some((log) => log.msg === 'job started' && log.jobId === jobId)).toBe(false);
  });

  it('still serves a good job after all of them, in a subdirectory of WORK_DIR', async () => {
    const jobId = randomUUID();
    await queue.add('execute', { prompt: 'fine', workingDir: 'inside' }, { jobId });
    await waitFor('the job to complete', async () =>
      (await queue.getJobState(jobId)) === 'completed' ? true : undefined,
    );
    expect((await queue.getJob(jobId))?.returnvalue).toMatchObject({ success: true });
  });
});
