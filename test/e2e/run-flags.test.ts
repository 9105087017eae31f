import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ExecuteEvent, ExecuteRequest, ExecuteResult } from '../../src/contract/index.js';
import { startRealCliWorker, type RealCliWorker } from '../support/real-cli-worker.js';
import { collectEvents } from '../support/worker.js';

const redisUrl = inject('redisUrl');

const streamJson = (events: ExecuteEvent[]): Record<string, unknown>[] =>
  events.flatMap((e) =>
    e.type === 'output' ? [JSON.parse(e.content) as Record<string, unknown>] : [],
  );

describe('the per-run flags, through the real claude CLI', () => {
  let stack: RealCliWorker;

  beforeAll(async () => {
    stack = await startRealCliWorker(redisUrl);
  });

  afterAll(async () => {
    expect(await stack.close()).toEqual([]);
  });

  async function run(
    request: ExecuteRequest,
  ): Promise<{ result: ExecuteResult; events: ExecuteEvent[] }> {
    const jobId = await stack.client.enqueue(request);
    const result = await stack.client.result(jobId, { timeoutMs: 60_000 });
    return { result, events: await collectEvents(stack.client.events(jobId)) };
  }

  const sentTexts = (): string[] =>
    stack.standIn.requests
      .filter((r) => r.path.startsWith('/v1/messages'))
      .map((r) => JSON.stringify(r.body));

  it('runs with a system prompt of its own, no built-in tools, an effort, a fallback model and partial messages', async () => {
    stack.standIn.clearRequests();
    const { result, events } = await run({
      prompt: 'Hi.\nstand-in: say Configured.',
      systemPrompt: 'You are the flag checker.',
      appendSystemPrompt: 'Answer in one word.',
      tools: [],
      allowedTools: [],
      effort: 'low',
      fallbackModel: 'claude-haiku-4-5',
      includePartialMessages: true,
    });

    expect(result).toMatchObject({ success: true, finalOutput: 'Configured.' });
    const lines = streamJson(events);
    expect(lines[0]).toMatchObject({ type: 'system', subtype: 'init', tools: [] });
    expect(lines.some((line) => line.type === 'stream_event')).toBe(true);
    const [sent] = sentTexts();
    expect(sent).toContain('You are the flag checker.\\n\\nAnswer in one word.');
  });

  it('forks a session: the copy goes on under an id of its own and the original stays as it was', async () => {
    const original = await run({ prompt: 'Remember plum.\nstand-in: say Plum noted.' });
    const sessionId = original.result.sessionId ?? '';
    stack.standIn.clearRequests();
    const fork = await run({
      prompt: 'Now add pear.\nstand-in: say Plum and pear.',
      resumeSessionId: sessionId,
      forkSession: true,
    });
    expect(fork.result).toMatchObject({ success: true, resumed: true });
    expect(fork.result.sessionId).not.toBe(sessionId);
    expect(sentTexts()[0]).toContain('Remember plum.');

    stack.standIn.clearRequests();
    const again = await run({
      prompt: 'What do you have?\nstand-in: say Only plum.',
      resumeSessionId: sessionId,
    });
    expect(again.result).toMatchObject({ success: true, sessionId });
    const [sent] = sentTexts();
    expect(sent).toContain('Remember plum.');
    expect(sent).not.toContain('Now add pear.');
  });

  it('retries a fork that failed after the CLI wrote its prompt with a note to go on, and counts only what the fork spent', async () => {
    // The original costs $0.40 (100000 input tokens of the stand-in's model at $4 a million).
    const original = await run({
      prompt: 'Remember fig.\nstand-in: usage 100000 0\nstand-in: say Fig.',
    });
    expect(original.result.costUsd).toBeCloseTo(0.4, 3);
    stack.standIn.clearRequests();
    const prompt = 'Now add lime.\nstand-in: http 500 times=1\nstand-in: say Fig and lime.';
    const jobId = await stack.client.enqueue(
      { prompt, resumeSessionId: original.result.sessionId ?? '', forkSession: true },
      { attempts: 2 },
    );
    const result = await stack.client.result(jobId, { timeoutMs: 60_000 });
    const events = await collectEvents(stack.client.events(jobId));

    expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'Fig and lime.' });
    const started = events.flatMap((e) => (e.type === 'started' ? [e.data.prompt] : []));
    expect(started).toEqual(['original', 'continue']);
    const last = sentTexts().at(-1) ?? '';
    expect(last.split('Now add lime.').length - 1).toBe(1);
    // What the fork's own calls cost, not the $0.40 of the session it copied.
    expect(result.jobCostUsd).toBeGreaterThan(0);
    expect(result.jobCostUsd).toBeLessThan(0.01);
  });

  it('retries, and resumes, a session whose working directory has a path longer than a file name can be', async () => {
    // The CLI names the project directory after the path, cut at 200 characters with a hash.
    const dir = join('d'.repeat(120), 'e'.repeat(120));
    mkdirSync(join(stack.worker.workDir, dir), { recursive: true });
    const prompt = 'Remember quince.\nstand-in: http 500 times=1\nstand-in: say Quince noted.';
    const jobId = await stack.client.enqueue({ prompt, workingDir: dir }, { attempts: 2 });
    const first = await stack.client.result(jobId, { timeoutMs: 60_000 });
    expect(first).toMatchObject({ success: true, attempt: 2, finalOutput: 'Quince noted.' });

    stack.standIn.clearRequests();
    const again = await run({
      prompt: 'What was it?\nstand-in: say Quince.',
      workingDir: dir,
      resumeSessionId: first.sessionId ?? '',
    });
    expect(again.result).toMatchObject({ success: true, sessionId: first.sessionId });
    expect(sentTexts()[0]).toContain('Quince noted.');
  });
});
