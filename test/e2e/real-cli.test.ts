import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent, ExecuteRequest } from '../../src/contract/index.js';
import type { StandIn } from '../../tools/stand-in/index.js';
import { pidsWithEnv } from '../support/processes.js';
import { startRealCliWorker, type RealCliWorker } from '../support/real-cli-worker.js';
import { createQueue, type TestWorker } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** The stdout lines of the CLI among a job's events, parsed. */
const streamJson = (events: ExecuteEvent[]): Record<string, unknown>[] =>
  events.flatMap((e) =>
    e.type === 'output' ? [JSON.parse(e.content) as Record<string, unknown>] : [],
  );

/** What the stand-in was sent, as one string per request, to look for earlier turns in. */
const requestTexts = (standIn: StandIn): string[] =>
  standIn.requests
    .filter((r) => r.path.startsWith('/v1/messages'))
    .map((r) => JSON.stringify(r.body));

describe('end to end through the real claude CLI', () => {
  let setup: RealCliWorker;
  let standIn: StandIn;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let queueName: string;

  beforeAll(async () => {
    setup = await startRealCliWorker(redisUrl);
    ({ standIn, worker, client, queueName } = setup);
  });

  afterAll(async () => {
    expect(await setup.close()).toEqual([]);
  });

  const run = (request: ExecuteRequest) => setup.run(request);

  it('answers with text: the CLI’s init, assistant and result lines in order, and the result', async () => {
    const { result, events } = await run({
      prompt: 'Say hello.\nstand-in: say Hello from the stand-in.',
    });

    const lines = streamJson(events);
    const kinds = lines.map((line) =>
      [line.type, line.subtype].filter((part) => typeof part === 'string').join('/'),
    );
    expect(kinds[0]).toBe('system/init');
    expect(kinds.indexOf('assistant')).toBeGreaterThan(0);
    expect(kinds.at(-1)).toBe('result/success');
    expect(events[0]?.type).toBe('started');
    expect(events.at(-1)?.type).toBe('completed');
    const init = lines[0];
    expect(result).toMatchObject({
      success: true,
      exitCode: 0,
      isError: false,
      finalOutput: 'Hello from the stand-in.',
      sessionId: init?.session_id,
      numTurns: 1,
    });
    expect(result.costUsd).toBeGreaterThan(0);
  });

  it('runs a Bash tool in the job’s workingDir when allowedTools lets it, and not otherwise', async () => {
    const prompt = (name: string): string =>
      `Make a file.\nstand-in: bash echo made-by-bash > ${name} && cat ${name}\nstand-in: say The file says {{result}}`;
    mkdirSync(join(worker.workDir, 'project'), { recursive: true });
    const allowed = await run({
      prompt: prompt('allowed.txt'),
      workingDir: 'project',
      allowedTools: ['Bash'],
    });
    expect(readFileSync(join(worker.workDir, 'project', 'allowed.txt'), 'utf8')).toBe(
      'made-by-bash\n',
    );
    // The tool ran isolated: as the run's own uid, inside namespaces of its own.
    const started = allowed.events.find((event) => event.type === 'started');
    const isolation = started?.type === 'started' ? started.data.isolation : undefined;
    expect(isolation).toMatchObject({ mode: 'uid', namespaces: ['pid', 'ipc', 'mount'] });
    expect(statSync(join(worker.workDir, 'project', 'allowed.txt')).uid).toBe(isolation?.uid);
    expect(allowed.result).toMatchObject({
      success: true,
      finalOutput: 'The file says made-by-bash',
    });
    const toolCall = streamJson(allowed.events).find((line) =>
      JSON.stringify(line).includes('"tool_use"'),
    );
    expect(JSON.stringify(toolCall)).toContain('echo made-by-bash > allowed.txt');

    const denied = await run({
      prompt: prompt('denied.txt'),
      workingDir: 'project',
      allowedTools: ['Read'],
    });
    expect(existsSync(join(worker.workDir, 'project', 'denied.txt'))).toBe(false);
    expect(denied.result.permissionDenials).toHaveLength(1);
  });

  it('writes and edits files in the job’s workingDir as the run’s own uid, and the next job goes on with them', async () => {
    mkdirSync(join(worker.workDir, 'notes'), { recursive: true });
    const wrote = await run({
      prompt: 'Start the notes.\nstand-in: write notes.md first draft\nstand-in: say Written.',
      workingDir: 'notes',
      allowedTools: ['Write'],
    });
    expect(wrote.result).toMatchObject({ success: true, finalOutput: 'Written.' });
    const edited = await run({
      prompt:
        'Fix the notes.\nstand-in: read notes.md\nstand-in: edit notes.md :: first :: second\nstand-in: say Edited.',
      workingDir: 'notes',
      allowedTools: ['Read', 'Edit'],
    });
    expect(edited.result).toMatchObject({ success: true, finalOutput: 'Edited.' });
    const path = join(worker.workDir, 'notes', 'notes.md');
    expect(readFileSync(path, 'utf8')).toBe('second draft');
    const started = edited.events.find((event) => event.type === 'started');
    expect(statSync(path).uid).toBe(started?.type === 'started' ? started.data.isolation?.uid : -1);
  });

  it('resumes a session: a second job with resumeSessionId continues the first conversation', async () => {
    const first = await run({
      prompt: 'Remember the word kumquat.\nstand-in: say I will remember kumquat.',
    });
    standIn.clearRequests();
    const second = await run({
      prompt: 'What was the word?\nstand-in: say It was kumquat.',
      resumeSessionId: first.result.sessionId ?? '',
    });

    expect(second.result).toMatchObject({
      success: true,
      resumed: true,
      sessionId: first.result.sessionId,
    });
    const [sent] = requestTexts(standIn);
    expect(sent).toContain('Remember the word kumquat.');
    expect(sent).toContain('I will remember kumquat.');
    expect(sent).toContain('What was the word?');
  });

  it.each([
    [500, 'API Error: 500'],
    [401, 'API Error: 401'],
  ])(
    'fails the job on an API %i, with the CLI’s error text and exit code 1',
    async (status, text) => {
      // An id no other test's job has: the leftover check below looks for processes by it.
      const jobId = await client.enqueue(
        { prompt: `stand-in: http ${status}` },
        { jobId: randomUUID() },
      );
      const result = await client.result(jobId, { timeoutMs: 60_000 });
      const queue = createQueue(redisUrl, queueName);
      try {
        const job = await queue.getJob(jobId);
        expect(await job?.getState()).toBe('failed');
        expect(job?.failedReason).toContain(text);
        expect(job?.failedReason).toContain('exited with code 1');
        expect(result).toMatchObject({
          success: false,
          exitCode: 1,
          isError: true,
          failure: 'cli-error',
        });
        expect(result.error).toBe(job?.failedReason);
        expect(result.finalOutput).toContain(text);
      } finally {
        await queue.close();
      }
    },
  );

  it('ends as error_max_turns when maxTurns is 1 and the script wants a tool', async () => {
    const { result } = await run({
      prompt: 'stand-in: bash echo one\nstand-in: say never reached',
      allowedTools: ['Bash'],
      maxTurns: 1,
    });
    expect(result).toMatchObject({ success: false, resultSubtype: 'error_max_turns', exitCode: 1 });
    expect(result.error).toContain('error_max_turns');
  });

  it('on timeout while a Bash tool sleeps, fails with timedOut and leaves no process of the run', async () => {
    const { jobId, result, events } = await run({
      prompt: 'stand-in: bash echo waiting && sleep 600 && echo finished',
      allowedTools: ['Bash'],
      // Room for the CLI to start and reach its tool on a loaded machine (4 s was not always):
      // the timeout must strike while the tool sleeps.
      timeout: 10,
    });
    expect(result).toMatchObject({ success: false, timedOut: true, failure: 'timeout' });
    expect(events.some((e) => e.type === 'output' && e.content.includes('sleep 600'))).toBe(true);
    expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);
  });
});
