import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ExecuteEvent, ExecuteRequest, ExecuteResult } from '../../src/contract/index.js';
import { startRealCliWorker, type RealCliWorker } from '../support/real-cli-worker.js';
import { createQueue } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** The CLI's arguments of each attempt, from its started event. */
const startedArgs = (events: ExecuteEvent[]): string[][] =>
  events.flatMap((event) => (event.type === 'started' ? [event.data.args] : []));

const terminals = (events: ExecuteEvent[]): ExecuteResult[] =>
  events.flatMap((e) => (e.type === 'completed' || e.type === 'failed' ? [e.data] : []));

describe('a job budget and structured answers, through the real claude CLI', () => {
  let setup: RealCliWorker;

  beforeAll(async () => {
    setup = await startRealCliWorker(redisUrl);
  });

  afterAll(async () => {
    expect(await setup.close()).toEqual([]);
  });

  const run = (request: ExecuteRequest, attempts = 1) => setup.run(request, { attempts });

  it('gives a retry what is left of the budget, then fails as budget without another attempt', async () => {
    // Each priced call costs $0.80 (200000 input tokens of the stand-in's model at $4 a million).
    // One turn an attempt: the first ends after its tool call (error_max_turns, retried), and the
    // retry's answer is the step after it.
    const prompt = [
      'Work through the list.',
      'stand-in: usage 200000 0',
      'stand-in: bash echo first',
      'stand-in: usage 200000 0',
      'stand-in: say second',
    ].join('\n');
    const { jobId, result, events } = await run(
      { prompt, allowedTools: ['Bash'], maxTurns: 1, maxBudgetUsd: 1 },
      3,
    );

    const args = startedArgs(events);
    expect(args).toHaveLength(2);
    expect(args[0]).toContain('--max-budget-usd=1');
    expect(args[1]).toContain('--max-budget-usd=0.2');
    expect(terminals(events).map((r) => [r.attempt, r.failure, r.jobCostUsd, r.retrying])).toEqual([
      [1, 'cli-error', 0.8, true],
      [2, 'budget', 1.6, false],
    ]);
    expect(result).toMatchObject({ attempt: 2, failure: 'budget', success: false });
    expect(result.error).toContain('Reached maximum budget ($0.2)');
    const queue = createQueue(redisUrl, setup.queueName);
    try {
      const job = await queue.getJob(jobId);
      expect(await job?.getState()).toBe('failed');
      expect(job?.attemptsMade).toBe(2);
    } finally {
      await queue.close();
    }
  });

  it('fails a retry at once as budget, without starting the CLI, when less than a cent is left', async () => {
    const prompt = 'stand-in: usage 248750 0\nstand-in: bash echo first\nstand-in: say second';
    const { result, events } = await run(
      { prompt, allowedTools: ['Bash'], maxTurns: 1, maxBudgetUsd: 1 },
      3,
    );

    expect(startedArgs(events)).toHaveLength(1);
    expect(terminals(events).map((r) => [r.attempt, r.failure, r.jobCostUsd])).toEqual([
      [1, 'cli-error', 0.995],
      [2, 'budget', 0.995],
    ]);
    expect(result).toMatchObject({ exitCode: null, retrying: false });
    expect(result.error).toBe(
      "budget spent: the job's attempts spent $0.995 of its maxBudgetUsd $1; no attempt starts with less than $0.01 left",
    );
  });

  it('delivers the schema’s answer as structuredOutput', async () => {
    const jsonSchema = {
      type: 'object',
      properties: { verdict: { enum: ['pass', 'fail'] }, failures: { type: 'integer' } },
      required: ['verdict', 'failures'],
    };
    const { result, events } = await run({
      prompt: 'Did the tests pass?\nstand-in: structured {"verdict":"pass","failures":0}',
      jsonSchema,
    });
    expect(startedArgs(events)[0]).toContain(`--json-schema=${JSON.stringify(jsonSchema)}`);
    expect(result).toMatchObject({
      success: true,
      failure: null,
      structuredOutput: { verdict: 'pass', failures: 0 },
    });
    expect(result.jobCostUsd).toBe(result.costUsd);
  });

  it('fails as no-structured-output when the model never gives the answer, and retries it', async () => {
    const { result, events } = await run(
      {
        prompt: 'Did the tests pass?\nstand-in: say They passed.',
        jsonSchema: { type: 'object', properties: { verdict: { type: 'string' } } },
      },
      2,
    );
    expect(terminals(events).map((r) => [r.failure, r.retrying])).toEqual([
      ['no-structured-output', true],
      ['no-structured-output', false],
    ]);
    expect(result).toMatchObject({ success: false, resultSubtype: 'success', exitCode: 0 });
    expect(result.structuredOutput).toBeNull();
  });

  it('fails as invalid-structured-output when the answer breaks the schema, naming how', async () => {
    // The CLI checks the answer against the schema itself, but not its formats.
    const { result } = await run({
      prompt: 'Who owns this?\nstand-in: structured {"owner":"nobody"}',
      jsonSchema: {
        type: 'object',
        properties: { owner: { type: 'string', format: 'email' } },
        required: ['owner'],
      },
    });
    expect(result).toMatchObject({
      success: false,
      failure: 'invalid-structured-output',
      structuredOutput: { owner: 'nobody' },
    });
    expect(result.error).toBe(
      'the structured answer does not match jsonSchema: /owner must match format "email"',
    );
  });
});
