import { describe, expect, it } from 'vitest';
import { judgeRun } from '../../../src/executor/outcome.js';
import type { RunOutcome } from '../../../src/executor/run.js';
import { StreamSummary } from '../../../src/executor/stream-summary.js';

/** A run that exited with `exitCode` after printing `resultLine` as its last stdout line. */
function ranWith(resultLine: Record<string, unknown>, exitCode = 0): RunOutcome {
  const summary = new StreamSummary();
  summary.observe(JSON.stringify({ type: 'result', session_id: 's', ...resultLine }), undefined);
  return {
    pid: 1,
    startedAt: 0,
    durationMs: 10,
    spawnError: null,
    exitCode,
    signal: null,
    stoppedBy: null,
    stopMessage: null,
    forced: false,
    output: { text: '', truncated: false, bytes: 0 },
    summary,
    lastStderr: null,
    leftovers: 0,
  };
}

const SCHEMA = {
  type: 'object',
  properties: { email: { type: 'string', format: 'email' }, n: { type: 'integer' } },
  required: ['email', 'n'],
};

describe('judging the answer of a run', () => {
  it('fails as budget, not as a CLI error, when the CLI stopped at its --max-budget-usd', () => {
    const report = judgeRun(
      ranWith(
        {
          subtype: 'error_max_budget_usd',
          is_error: true,
          errors: ['Reached maximum budget ($0.2)'],
          total_cost_usd: 1.6,
        },
        1,
      ),
      60_000,
    );
    expect(report).toMatchObject({ success: false, failure: 'budget', costUsd: 1.6 });
    expect(report.error).toBe(
      'claude reported an error error_max_budget_usd (exited with code 1): Reached maximum budget ($0.2)',
    );
  });

  it('gives the structured answer when it validates against the schema', () => {
    const answer = { email: 'a@example.com', n: 2 };
    const report = judgeRun(
      ranWith({ subtype: 'success', is_error: false, structured_output: answer }),
      60_000,
      { jsonSchema: SCHEMA },
    );
    expect(report).toMatchObject({ success: true, failure: null, structuredOutput: answer });
  });

  it('fails a run the CLI calls a success when the schema asked for an answer that never came', () => {
    const success = ranWith({ subtype: 'success', is_error: false, result: 'Done.' });
    expect(judgeRun(success, 60_000, { jsonSchema: SCHEMA })).toMatchObject({
      success: false,
      failure: 'no-structured-output',
      structuredOutput: null,
      finalOutput: 'Done.',
    });
    expect(judgeRun(success, 60_000)).toMatchObject({ success: true, failure: null });
  });

  it('fails an answer that breaks the schema, naming the first violations', () => {
    const report = judgeRun(
      ranWith({ subtype: 'success', is_error: false, structured_output: { email: 'nope' } }),
      60_000,
      { jsonSchema: SCHEMA },
    );
    expect(report).toMatchObject({
      success: false,
      failure: 'invalid-structured-output',
      structuredOutput: { email: 'nope' },
    });
    expect(report.error).toBe(
      `the structured answer does not match jsonSchema: must have required property 'n'; /email must match format "email"`,
    );
  });

  it('reports a CLI error as such even when the schema asked for an answer', () => {
    const report = judgeRun(
      ranWith({ subtype: 'success', is_error: true, result: 'API Error: 500' }, 1),
      60_000,
      { jsonSchema: SCHEMA },
    );
    expect(report).toMatchObject({ success: false, failure: 'cli-error' });
  });
});
