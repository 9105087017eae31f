import { describe, expect, it } from 'vitest';
import { judgeAnswer } from '../../../src/executor/answer.js';
import { judgeRun } from '../../../src/executor/outcome.js';
import type { RunOutcome } from '../../../src/executor/run.js';
import { StreamSummary } from '../../../src/executor/stream-summary.js';

/** A run that exited with `exitCode` after printing `resultLine` as its last stdout line. */
function ranWith(
  resultLine: Record<string, unknown>,
  exitCode = 0,
  answerBytes = Infinity,
): RunOutcome {
  const summary = new StreamSummary({ answerBytes });
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
  it('fails a structured answer over MAX_OUTPUT_BYTES as too large, not as missing', async () => {
    const answer = { email: 'a@example.com', n: 1, pad: 'p'.repeat(2000) };
    const report = judgeRun(ranWith({ is_error: false, structured_output: answer }, 0, 1024), 1000);
    const judged = await judgeAnswer(report, SCHEMA);
    expect(judged).toMatchObject({
      success: false,
      failure: 'invalid-structured-output',
      structuredOutput: null,
    });
    expect(judged.error).toBe(
      `the structured answer is ${JSON.stringify(answer).length} bytes as JSON, more than MAX_OUTPUT_BYTES: it was not kept`,
    );
  });

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

  it('gives the structured answer when it validates against the schema', async () => {
    const answer = { email: 'a@example.com', n: 2 };
    const report = await judgeAnswer(
      judgeRun(ranWith({ subtype: 'success', is_error: false, structured_output: answer }), 60_000),
      SCHEMA,
    );
    expect(report).toMatchObject({ success: true, failure: null, structuredOutput: answer });
  });

  it('fails a run the CLI calls a success when the schema asked for an answer that never came', async () => {
    const success = judgeRun(
      ranWith({ subtype: 'success', is_error: false, result: 'Done.' }),
      60_000,
    );
    expect(await judgeAnswer(success, SCHEMA)).toMatchObject({
      success: false,
      failure: 'no-structured-output',
      structuredOutput: null,
      finalOutput: 'Done.',
    });
    expect(await judgeAnswer(success, undefined)).toMatchObject({ success: true, failure: null });
  });

  it('fails an answer that breaks the schema, naming the first violations', async () => {
    const report = await judgeAnswer(
      judgeRun(
        ranWith({ subtype: 'success', is_error: false, structured_output: { email: 'nope' } }),
        60_000,
      ),
      SCHEMA,
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

  it('names three violations of an answer and counts the rest', async () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { type: 'integer' }, c: { type: 'integer' } },
      required: ['d'],
    };
    const answer = { a: 'x', b: 'y', c: 'z' };
    const report = await judgeAnswer(
      judgeRun(ranWith({ subtype: 'success', is_error: false, structured_output: answer }), 60_000),
      schema,
    );
    expect(report.error).toBe(
      "the structured answer does not match jsonSchema: must have required property 'd'; /a must be integer; /b must be integer (and 1 more)",
    );
  });

  it('fails an answer whose check outlasts its limit, and the event loop turns meanwhile', async () => {
    // Checked on the event loop, this pattern would take minutes on this answer.
    const schema = { type: 'object', properties: { word: { type: 'string', pattern: '^(a+)+$' } } };
    const answer = { word: `${'a'.repeat(36)}!` };
    let turns = 0;
    const ticking = setInterval(() => (turns += 1), 20);
    try {
      const report = await judgeAnswer(
        judgeRun(
          ranWith({ subtype: 'success', is_error: false, structured_output: answer }),
          60_000,
        ),
        schema,
        500,
      );
      expect(report).toMatchObject({ success: false, failure: 'invalid-structured-output' });
      expect(report.error).toBe(
        'the structured answer could not be checked against jsonSchema: it took over 0.5 s (does a pattern backtrack?)',
      );
    } finally {
      clearInterval(ticking);
    }
    expect(turns).toBeGreaterThan(0);
  });

  it('reports a CLI error as such even when the schema asked for an answer', async () => {
    const report = await judgeAnswer(
      judgeRun(
        ranWith({ subtype: 'success', is_error: true, result: 'API Error: 500' }, 1),
        60_000,
      ),
      SCHEMA,
    );
    expect(report).toMatchObject({ success: false, failure: 'cli-error' });
  });
});
