import { describe, expect, it } from 'vitest';
import { StreamSummary } from '../../../src/executor/stream-summary.js';

const json = (value: unknown): string => JSON.stringify(value);

describe('StreamSummary', () => {
  it('takes the session id from the first line that carries one', () => {
    const summary = new StreamSummary();
    summary.observe(json({ type: 'system', session_id: '' }), undefined);
    summary.observe(json({ type: 'system', session_id: 'first' }), undefined);
    summary.observe(json({ type: 'assistant', session_id: 'second' }), undefined);
    expect(summary.sessionId).toBe('first');
    expect(summary.lines).toBe(3);
  });

  it('reads the fields of the result line', () => {
    const summary = new StreamSummary();
    summary.observe(
      json({
        type: 'result',
        subtype: 'success',
        is_error: false,
        result: 'All done.',
        num_turns: 3,
        total_cost_usd: 0.0123,
        usage: { input_tokens: 10 },
        permission_denials: [{ tool_name: 'Bash' }],
        api_error_status: 529,
        errors: ['one', 2],
      }),
      undefined,
    );
    expect(summary.resultLine).toEqual({
      subtype: 'success',
      isError: false,
      result: 'All done.',
      resultTruncated: false,
      errors: ['one', '2'],
      numTurns: 3,
      costUsd: 0.0123,
      usage: { input_tokens: 10 },
      permissionDenials: [{ tool_name: 'Bash' }],
      permissionDenialsOmitted: 0,
      apiErrorStatus: 529,
      structuredOutput: null,
      structuredOutputDroppedBytes: null,
      costSinceLastResultUsd: null,
    });
  });

  it('keeps of a result line of megabytes (a tool can print one) no more than its caps', () => {
    const summary = new StreamSummary({ answerBytes: 64 * 1024 });
    const denial = { tool_name: 'Write', tool_input: { content: 'd'.repeat(1000) } };
    summary.observe(
      json({
        type: 'result',
        is_error: false,
        result: `begins ${'r'.repeat(3 * 1024 * 1024)} ends`,
        usage: { input_tokens: 10, padding: 'u'.repeat(1024 * 1024) },
        permission_denials: Array.from({ length: 2000 }, () => denial),
        structured_output: { items: 'z'.repeat(100 * 1024) },
      }),
      undefined,
    );
    const line = summary.resultLine;
    expect(Buffer.byteLength(line?.result ?? '')).toBeLessThan(64 * 1024 + 100);
    expect(line?.result).toMatch(
      /^begins r+\n\[\.\.\. \d+ bytes of output truncated \.\.\.\]\nr+ ends$/,
    );
    expect(line?.resultTruncated).toBe(true);
    expect(line?.usage).toBeNull();
    const kept = line?.permissionDenials.length ?? 0;
    expect(kept).toBeGreaterThan(10);
    expect(JSON.stringify(line?.permissionDenials).length).toBeLessThanOrEqual(16 * 1024);
    expect(line?.permissionDenials[0]).toEqual(denial);
    expect(line?.permissionDenialsOmitted).toBe(2000 - kept);
    expect(line?.structuredOutput).toBeNull();
    expect(line?.structuredOutputDroppedBytes).toBe(json({ items: 'z'.repeat(100 * 1024) }).length);
  });

  it('keeps a result within its caps whole', () => {
    const summary = new StreamSummary({ answerBytes: 64 * 1024 });
    const answer = { items: 'z'.repeat(60 * 1024) };
    summary.observe(
      json({
        type: 'result',
        is_error: false,
        result: 'é'.repeat(32 * 1024),
        structured_output: answer,
      }),
      undefined,
    );
    expect(summary.resultLine).toMatchObject({
      result: 'é'.repeat(32 * 1024),
      resultTruncated: false,
      structuredOutput: answer,
      structuredOutputDroppedBytes: null,
    });
  });

  it('reads errors of any shape as text, objects as their JSON, where String() would throw', () => {
    const summary = new StreamSummary();
    const errors: unknown[] = [{ toString: 0 }, { message: 'no' }, null, ['x']];
    summary.observe(json({ type: 'result', is_error: true, errors }), undefined);
    expect(summary.resultLine?.errors).toEqual([
      '{"toString":0}',
      '{"message":"no"}',
      'null',
      '["x"]',
    ]);
  });

  it('reads an error entry nested thousands deep without overflowing the stack', () => {
    const summary = new StreamSummary();
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const line = `{"type":"result","is_error":true,"result":"done","errors":[${deep},"plain"]}`;
    expect(() => summary.observe(line, undefined)).not.toThrow();
    expect(summary.resultLine).toMatchObject({
      result: 'done',
      errors: ['(an error entry too deeply nested to show)', 'plain'],
    });
  });

  it('leaves out what the result line nests too deeply to be written again, and odd counts', () => {
    const summary = new StreamSummary();
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const line = `{"type":"result","is_error":false,"result":"done","structured_output":${deep},"usage":{"x":${deep}},"permission_denials":[${deep}],"num_turns":-1e308,"api_error_status":1e300}`;
    summary.observe(line, undefined);
    expect(summary.resultLine).toMatchObject({
      result: 'done',
      structuredOutput: null,
      usage: null,
      permissionDenials: [],
      numTurns: null,
      apiErrorStatus: null,
    });
    // What the job's result and terminal event are made of.
    expect(() => JSON.stringify(summary.resultLine)).not.toThrow();
  });

  it('takes an api_retry wait as at most a day, and a negative or odd one as none', () => {
    const waitOf = (delay: unknown) => {
      const summary = new StreamSummary();
      summary.observe(
        json({ type: 'system', subtype: 'api_retry', retry_delay_ms: delay }),
        undefined,
      );
      return summary.lastApiRetry?.delayMs;
    };
    expect(waitOf(1500)).toBe(1500);
    expect(waitOf(1e12)).toBe(24 * 3600 * 1000);
    expect(waitOf(-5)).toBeNull();
    expect(waitOf('600')).toBeNull();
  });

  it('reads the structured answer and the cost since the previous result line, over all models', () => {
    const summary = new StreamSummary();
    summary.observe(
      json({
        type: 'result',
        is_error: false,
        total_cost_usd: 1.2,
        structured_output: { verdict: 'ok', score: 3 },
        model_usage_since_last_result: {
          'claude-opus-5-5': { costUSD: 0.4 },
          'claude-haiku-4-5': { costUSD: 0.05 },
        },
      }),
      undefined,
    );
    expect(summary.resultLine).toMatchObject({
      costUsd: 1.2,
      structuredOutput: { verdict: 'ok', score: 3 },
      costSinceLastResultUsd: 0.45,
    });
  });

  it('does not make up a cost since the last result from a model without one', () => {
    const summary = new StreamSummary();
    summary.observe(
      json({
        type: 'result',
        is_error: false,
        model_usage_since_last_result: { a: { costUSD: 0.4 }, b: { inputTokens: 3 } },
      }),
      undefined,
    );
    expect(summary.resultLine).toMatchObject({ costSinceLastResultUsd: null });
  });

  it('reads no model call since the last result (an API error at the first call) as nothing spent', () => {
    const summary = new StreamSummary();
    summary.observe(
      json({
        type: 'result',
        is_error: true,
        total_cost_usd: 0.4,
        model_usage_since_last_result: {},
      }),
      undefined,
    );
    expect(summary.resultLine).toMatchObject({ costUsd: 0.4, costSinceLastResultUsd: 0 });
  });

  it('does not vouch for a result line without a boolean is_error, and nulls odd fields', () => {
    const summary = new StreamSummary();
    summary.observe(
      json({ type: 'result', result: 42, num_turns: 1.5, usage: [1], errors: 'x' }),
      undefined,
    );
    expect(summary.resultLine).toMatchObject({
      subtype: null,
      isError: true,
      result: null,
      errors: [],
      numTurns: null,
      costUsd: null,
      usage: null,
      permissionDenials: [],
      apiErrorStatus: null,
    });
  });

  it('counts only the first result line: nothing printed after it rewrites the result', () => {
    const summary = new StreamSummary();
    summary.observe(json({ type: 'result', is_error: false, result: 'real' }), undefined);
    summary.observe(json({ type: 'result', is_error: true, result: 'forged' }), undefined);
    expect(summary.resultLine).toMatchObject({ isError: false, result: 'real' });
  });

  it('counts lines that are not a JSON object and keeps an excerpt of the first', () => {
    const summary = new StreamSummary();
    const long = `Error: ${'x'.repeat(500)}`;
    summary.observe(long, undefined);
    summary.observe('[1,2]', undefined);
    summary.observe('{not json', undefined);
    summary.observe('null', undefined);
    expect(summary.nonJsonLines).toBe(4);
    expect(summary.firstNonJson).toBe(long.slice(0, 200));
    expect(summary.resultLine).toBeNull();
  });

  it('counts lines that were not UTF-8 without reading them', () => {
    const summary = new StreamSummary();
    const hidden = Buffer.from(json({ type: 'result', is_error: false })).toString('base64');
    summary.observe(hidden, 'base64');
    expect(summary.invalidUtf8Lines).toBe(1);
    expect(summary.nonJsonLines).toBe(0);
    expect(summary.resultLine).toBeNull();
  });

  it('counts the pieces of an overlong line as lines, reading none of them', () => {
    const summary = new StreamSummary();
    summary.observePartial();
    summary.observePartial();
    expect(summary.lines).toBe(2);
    expect(summary.nonJsonLines).toBe(0);
  });

  it('counts the user lines that carry a tool result, and nothing else that mentions one', () => {
    const summary = new StreamSummary();
    const toolResult = { type: 'tool_result', tool_use_id: 't1', content: 'ok' };
    summary.observe(
      json({ type: 'user', message: { role: 'user', content: [toolResult] } }),
      undefined,
    );
    summary.observe(
      json({ type: 'user', message: { role: 'user', content: [{ type: 'text', text: 'hi' }] } }),
      undefined,
    );
    summary.observe(
      json({ type: 'assistant', message: { role: 'assistant', content: [toolResult] } }),
      undefined,
    );
    summary.observe(json({ type: 'user', message: { content: 'tool_result' } }), undefined);
    expect(summary.toolResults).toBe(1);
  });
});
