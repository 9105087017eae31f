import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatDuration, renderEvent } from '../../src/cli/render.js';
import {
  resultWithoutRun,
  type ExecuteEvent,
  type ExecuteResult,
  type OutputEvent,
} from '../../src/contract/index.js';

const envelope = { jobId: '42', attempt: 1, timestamp: '2026-01-01T00:00:00.000Z' };
let seq = 0;

function output(line: unknown, data?: OutputEvent['data']): OutputEvent {
  const content = typeof line === 'string' ? line : JSON.stringify(line);
  return { ...envelope, seq: ++seq, type: 'output', stream: 'stdout', content, data };
}

/** stream-json lines the real claude CLI (2.1.330) printed for runs scripted by the stand-in. */
function captured(name: string): OutputEvent[] {
  return readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => output(line));
}

function renderAll(events: readonly ExecuteEvent[]): string[] {
  return events.flatMap((event) => renderEvent(event));
}

function result(fields: Partial<ExecuteResult>): ExecuteResult {
  return {
    ...resultWithoutRun({
      jobId: '42',
      attempt: 1,
      failure: 'cli-error',
      error: 'x',
      sessionId: null,
      retrying: false,
      startedAt: 0,
    }),
    lastSeq: 9,
    ...fields,
  };
}

describe('rendering events as text', () => {
  it('announces a start with the pid and the short session id', () => {
    const started = (data: Partial<Extract<ExecuteEvent, { type: 'started' }>['data']>) =>
      renderEvent({
        ...envelope,
        seq: 1,
        type: 'started',
        data: {
          pid: 123,
          sessionId: '0d4fbe8e-cfe4-463d-9c3b-98afec264b0e',
          cwd: '/work',
          resumed: false,
          prompt: 'original',
          args: [],
          ...data,
        },
      });
    expect(started({})).toEqual(['▶ job 42 attempt 1 started (pid 123, session 0d4fbe8e…)']);
    expect(started({ resumed: true })).toEqual([
      '▶ job 42 attempt 1 started (pid 123, session 0d4fbe8e…, resumed)',
    ]);
    expect(started({ resumed: true, prompt: 'continue', sessionId: null })).toEqual([
      '▶ job 42 attempt 1 started (pid 123, resumed to continue)',
    ]);
    // Isolated runs say nothing more; an unisolated one and a session not kept do.
    expect(started({ isolation: { mode: 'uid', uid: 50000, namespaces: ['pid'] } })).toHaveLength(
      1,
    );
    expect(
      started({
        isolation: { mode: 'off', uid: null, namespaces: [], reason: 'RUN_ISOLATION=off' },
        sessionNote: 'session 0d4fbe8e grew past SESSION_MAX_BYTES',
      }),
    ).toEqual([
      '▶ job 42 attempt 1 started (pid 123, session 0d4fbe8e…)',
      '! not isolated: RUN_ISOLATION=off',
      '! session 0d4fbe8e grew past SESSION_MAX_BYTES',
    ]);
  });

  it('shows a real run: the model and cwd, tool calls, their results, the text and a summary', () => {
    expect(renderAll(captured('tool-run.jsonl'))).toEqual([
      '· model claude-opus-5-5, cwd /tmp/cap-P1kx4K',
      '→ Bash: echo hi && ls',
      '← hi',
      '  notes.txt',
      '→ Read: /tmp/cap-P1kx4K/notes.txt',
      '← 1\tline one',
      '  2\tline two',
      '  3',
      'The tool said: 1\tline one',
      '2\tline two',
      '3',
      '= success: 3 turns, $0.0021, 0.2s',
    ]);
  });

  it('shows a denied tool call as a warning and its result as an error', () => {
    const lines = renderAll(captured('permission-denied.jsonl'));
    expect(lines.slice(1, 4)).toEqual([
      '→ Bash: touch made.txt',
      '! permission denied: Bash',
      expect.stringMatching(/^← error: touch in '.*made\.txt' needs approval\. /),
    ]);
    expect(lines.at(-1)).toBe('= success: 2 turns, $0.0024, 0.1s');
  });

  it('labels an API error result as an error even though its subtype says success', () => {
    const lines = renderAll(captured('api-error.jsonl'));
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^API Error: 500 Scripted HTTP 500 from the stand-in\./),
      '= error: 1 turn, $0.0000, 0.1s',
    ]);
  });

  it('keeps a long tool result to its first 5 lines or 300 characters', () => {
    const toolResult = (content: unknown, isError = false) =>
      renderEvent(
        output({
          type: 'user',
          message: {
            role: 'user',
            content: [{ type: 'tool_result', tool_use_id: 't', content, is_error: isError }],
          },
        }),
      );
    const twenty = Array.from({ length: 20 }, (_, i) => String(i + 1)).join('\n');
    expect(toolResult(twenty)).toEqual(['← 1', '  2', '  3', '  4', '  5', '  … 15 more lines']);
    expect(toolResult('x'.repeat(1000))).toEqual([`← ${'x'.repeat(300)}…`]);
    expect(toolResult(`${'y'.repeat(250)}\n${'z'.repeat(100)}\nlast`)).toEqual([
      `← ${'y'.repeat(250)}`,
      `  ${'z'.repeat(50)}…`,
      '  … 1 more line',
    ]);
    expect(toolResult([{ type: 'text', text: 'from blocks' }, { type: 'image' }])).toEqual([
      '← from blocks',
      '  [image]',
    ]);
    expect(toolResult('')).toEqual(['← (no output)']);
    expect(toolResult('no such file', true)).toEqual(['← error: no such file']);
  });

  it('names each tool call by its most telling input', () => {
    const toolUse = (name: string, input: unknown) =>
      renderEvent(
        output({
          type: 'assistant',
          message: { role: 'assistant', content: [{ type: 'tool_use', id: 't', name, input }] },
        }),
      );
    expect(toolUse('Bash', { command: 'cd src &&\nnpm test', description: 'Run tests' })).toEqual([
      '→ Bash: cd src && …',
    ]);
    expect(toolUse('Grep', { pattern: 'TODO', path: 'src' })).toEqual(['→ Grep: TODO']);
    expect(toolUse('WebFetch', { url: 'https://example.com', prompt: 'Summarize' })).toEqual([
      '→ WebFetch: https://example.com',
    ]);
    expect(toolUse('TodoWrite', { todos: [{ content: 'a' }] })).toEqual([
      '→ TodoWrite: {"todos":[{"content":"a"}]}',
    ]);
    expect(toolUse('ExitPlanMode', {})).toEqual(['→ ExitPlanMode']);
    expect(toolUse('Bash', { command: 'x'.repeat(500) })).toEqual([`→ Bash: ${'x'.repeat(200)}…`]);
  });

  it('shows the lines of the fake CLIs and other stream-json types briefly, or not at all', () => {
    expect(
      renderAll([
        output({ type: 'system', subtype: 'init', cwd: '/work', session_id: 's' }),
        output({ type: 'tick', n: 1, session_id: 's' }),
        output({ type: 'stream_event', event: { type: 'content_block_delta' } }),
        output({
          type: 'system',
          subtype: 'api_retry',
          attempt: 1,
          max_retries: 10,
          error_status: 529,
        }),
        output({ type: 'system', subtype: 'compact_boundary' }),
        output({
          type: 'assistant',
          message: {
            content: [
              { type: 'thinking', thinking: 'hmm' },
              { type: 'text', text: 'Hi' },
            ],
          },
        }),
        output({ type: 'user', message: { content: 'a replayed prompt' } }),
        output({
          type: 'result',
          subtype: 'error_max_turns',
          is_error: true,
          num_turns: 5,
          total_cost_usd: 0.5,
          duration_ms: 125_000,
        }),
      ]),
    ).toEqual([
      '· cwd /work',
      '· tick',
      '! API error, retry 1/10 (status 529)',
      '· system: compact_boundary',
      'Hi',
      '= error_max_turns: 5 turns, $0.5000, 2m 05s',
    ]);
  });

  it('prints stdout that is not stream-json as it came, decoding base64 and marking a partial line', () => {
    expect(renderEvent(output('Error: something is not right'))).toEqual([
      'stdout: Error: something is not right',
    ]);
    expect(renderEvent(output('[1, 2]'))).toEqual(['stdout: [1, 2]']);
    const notUtf8 = Buffer.from([0xff, 0xfe, 0x41]).toString('base64');
    expect(renderEvent(output(notUtf8, { encoding: 'base64' }))).toEqual(['stdout: \ufffd\ufffdA']);
    expect(renderEvent(output('{"type":"assis', { partial: true }))).toEqual([
      'stdout: {"type":"assis …(the line goes on)',
    ]);
    expect(renderEvent(output('z'.repeat(5000)))).toEqual([`stdout: ${'z'.repeat(1000)}…`]);
  });

  it('prints stderr lines as stderr', () => {
    expect(
      renderEvent({
        ...envelope,
        seq: 3,
        type: 'error',
        stream: 'stderr',
        content: 'warning: first complaint',
      }),
    ).toEqual(['stderr: warning: first complaint']);
  });

  it('names lost events by seq and reason', () => {
    const gap = (ranges: { from: number; to: number }[], count: number) =>
      renderEvent({
        ...envelope,
        seq: ranges[0]?.from ?? 1,
        type: 'gap',
        data: { ranges, count, reason: 'buffer-overflow' },
      });
    expect(gap([{ from: 5, to: 7 }], 3)).toEqual(['! 3 events lost (seq 5-7): buffer-overflow']);
    expect(gap([{ from: 9, to: 9 }], 1)).toEqual(['! 1 event lost (seq 9): buffer-overflow']);
    expect(
      gap(
        [
          { from: 2, to: 3 },
          { from: 8, to: 8 },
        ],
        3,
      ),
    ).toEqual(['! 3 events lost (seq 2-3, 8): buffer-overflow']);
  });

  it('ends with the duration and cost, or the error and whether another attempt follows', () => {
    const done = result({
      success: true,
      failure: null,
      error: null,
      durationMs: 3210,
      costUsd: 0.0123,
    });
    expect(renderEvent({ ...envelope, seq: 9, type: 'completed', data: done })).toEqual([
      '✓ completed in 3.2s ($0.0123)',
    ]);
    expect(
      renderEvent({ ...envelope, seq: 9, type: 'completed', data: { ...done, costUsd: null } }),
    ).toEqual(['✓ completed in 3.2s']);
    const failed = result({
      error: 'cancelled: not needed',
      failure: 'cancelled',
      cancelled: true,
    });
    expect(renderEvent({ ...envelope, seq: 9, type: 'failed', data: failed })).toEqual([
      '✗ failed: cancelled: not needed',
    ]);
    expect(
      renderEvent({
        ...envelope,
        seq: 9,
        type: 'failed',
        data: { ...failed, error: 'claude exited with code 1', retrying: true },
      }),
    ).toEqual(['✗ failed: claude exited with code 1', '↻ another attempt follows']);
  });

  it('never lets printed text drive the terminal', () => {
    expect(
      renderEvent(
        output({
          type: 'assistant',
          message: { content: [{ type: 'text', text: '\u001b[2Jcleared\r\nline\rover' }] },
        }),
      ),
    ).toEqual(['\ufffd[2Jcleared', 'line\ufffdover']);
    expect(renderEvent(output('bell\u0007'))).toEqual(['stdout: bell\ufffd']);
  });

  it('colors only when asked, with the same text underneath', () => {
    const done = result({ success: true, failure: null, error: null, durationMs: 500, costUsd: 0 });
    const event: ExecuteEvent = { ...envelope, seq: 9, type: 'completed', data: done };
    const [colored] = renderEvent(event, { color: true });
    expect(colored).toContain('\u001b[32m');
    // eslint-disable-next-line no-control-regex -- stripping the color codes again
    expect(colored?.replace(/\u001b\[\d+m/g, '')).toBe(renderEvent(event)[0]);
  });

  it('formats durations for people', () => {
    expect(
      [0, 950, 59_940, 59_960, 60_000, 3_599_000, 3_600_000, 7_384_000].map(formatDuration),
    ).toEqual(['0.0s', '0.9s', '59.9s', '1m 00s', '1m 00s', '59m 59s', '1h 00m', '2h 03m']);
  });
});
