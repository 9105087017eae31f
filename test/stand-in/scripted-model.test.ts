import { describe, expect, it } from 'vitest';
import { decide } from '../../tools/stand-in/scripted-model.js';

/** Request bodies shaped like the ones the CLI 2.1.330 sends. */
const REMINDER = { type: 'text', text: '<system-reminder>\nSome CLI note.\n</system-reminder>\n' };
const TOOLS = ['Bash', 'Edit', 'Read', 'Write'].map((name) => ({ name, input_schema: {} }));

function prompt(text: string) {
  return { role: 'user', content: [REMINDER, { type: 'text', text }] };
}
const environment = {
  role: 'system',
  content: '# Environment\n - Primary working directory: /work/dir\n - Platform: linux\n',
};
function toolUse(id: string) {
  return { role: 'assistant', content: [{ type: 'tool_use', id, name: 'Bash', input: {} }] };
}
function toolResult(id: string, content: unknown) {
  return { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content }] };
}
function said(text: string) {
  return { role: 'assistant', content: [{ type: 'text', text }] };
}
function request(...messages: unknown[]) {
  return { model: 'claude-test', stream: true, tools: TOOLS, messages };
}

const SCRIPT = 'Do it.\nstand-in: bash ls\nstand-in: say saw {{result}}';

describe('the scripted model', () => {
  it('plays the first step for a fresh prompt', () => {
    expect(decide(request(prompt(SCRIPT), environment))).toEqual({
      scenario: 'step',
      step: 0,
      stepKind: 'bash',
      steps: 2,
      reply: {
        kind: 'tool',
        name: 'Bash',
        input: { command: 'ls', description: 'Run the scripted command', timeout: 600_000 },
      },
    });
  });

  it('plays the step numbered by the assistant messages after the scripted prompt', () => {
    const body = request(prompt(SCRIPT), environment, toolUse('t1'), toolResult('t1', 'a.txt'));
    expect(decide(body)).toMatchObject({
      scenario: 'step',
      step: 1,
      reply: { kind: 'text', text: 'saw a.txt' },
    });
  });

  it('fills {{result}} from the latest tool result, whose content may be text blocks', () => {
    const script = 'stand-in: bash a\nstand-in: bash b\nstand-in: say {{result}}';
    const body = request(
      prompt(script),
      toolUse('t1'),
      toolResult('t1', 'first'),
      toolUse('t2'),
      toolResult('t2', [
        { type: 'text', text: 'second' },
        { type: 'text', text: 'part' },
      ]),
    );
    expect(decide(body).reply).toEqual({ kind: 'text', text: 'second\npart' });
  });

  it('ends a finished script quoting the latest tool result when the last step was a tool', () => {
    const body = request(prompt('stand-in: bash ls'), toolUse('t1'), toolResult('t1', 'a.txt'));
    expect(decide(body)).toMatchObject({
      scenario: 'script-done',
      reply: { kind: 'text', text: 'Done. The tool said: a.txt' },
    });
  });

  it('ends a finished script with plain "Done." when the last step was not a tool', () => {
    const body = request(prompt('stand-in: say hi'), said('hi'), prompt('and now?'));
    expect(decide(body)).toMatchObject({
      scenario: 'script-done',
      reply: { kind: 'text', text: 'Done.' },
    });
  });

  it('continues the earlier script when a resumed session brings a prompt without one', () => {
    const script = 'stand-in: say one\nstand-in: say two\nstand-in: say three';
    const body = request(prompt(script), environment, said('one'), prompt('continue please'));
    expect(decide(body)).toMatchObject({ step: 1, reply: { kind: 'text', text: 'two' } });
  });

  it('does not count the filler the CLI puts after a tool call a killed run never finished', () => {
    const body = request(
      prompt(SCRIPT),
      environment,
      toolUse('t1'),
      toolResult('t1', '[Tool call interrupted: the session ended before this call finished]'),
      said('No response requested.'),
      prompt('Continue the task from where it stopped.'),
    );
    expect(decide(body)).toMatchObject({ scenario: 'step', step: 1, reply: { kind: 'text' } });
  });

  it('plays the new script when a resumed session brings a prompt with its own', () => {
    const body = request(
      prompt('stand-in: say one\nstand-in: say two'),
      said('one'),
      prompt('again\nstand-in: say fresh'),
    );
    expect(decide(body)).toMatchObject({
      step: 0,
      steps: 1,
      reply: { kind: 'text', text: 'fresh' },
    });
  });

  it('takes the latest prompt of a merged user message (runs that failed before an answer)', () => {
    const merged = {
      role: 'user',
      content: [
        { type: 'text', text: 'retry\nstand-in: http 500' },
        { type: 'text', text: 'retry once more\nstand-in: say recovered' },
      ],
    };
    expect(decide(request(prompt('stand-in: say one'), said('one'), merged)).reply).toEqual({
      kind: 'text',
      text: 'recovered',
    });
  });

  it('never takes a script from a tool result or a system reminder', () => {
    const body = request(
      prompt('stand-in: bash cat script.txt'),
      toolUse('t1'),
      toolResult('t1', 'stand-in: say from the file'),
      {
        role: 'user',
        content: [
          { type: 'text', text: '<system-reminder>stand-in: say sneaky</system-reminder>' },
        ],
      },
    );
    expect(decide(body)).toMatchObject({ scenario: 'script-done', steps: 1 });
  });

  it('resolves relative file paths against the working directory the CLI states', () => {
    const script = [
      'stand-in: write notes/a.txt x\\ny',
      'stand-in: read /etc/hostname',
      'stand-in: edit notes/a.txt :: x :: z',
    ].join('\n');
    const replies = [0, 1, 2].map((played) => {
      const messages: unknown[] = [prompt(script), environment];
      for (let i = 0; i < played; i++) messages.push(toolUse(`t${i}`), toolResult(`t${i}`, 'ok'));
      return decide(request(...messages)).reply;
    });
    expect(replies).toEqual([
      {
        kind: 'tool',
        name: 'Write',
        input: { file_path: '/work/dir/notes/a.txt', content: 'x\ny' },
      },
      { kind: 'tool', name: 'Read', input: { file_path: '/etc/hostname' } },
      {
        kind: 'tool',
        name: 'Edit',
        input: { file_path: '/work/dir/notes/a.txt', old_string: 'x', new_string: 'z' },
      },
    ]);
  });

  it('finds the working directory in the system prompt too', () => {
    const body = {
      ...request(prompt('stand-in: read a.txt')),
      system: [{ type: 'text', text: '<env>\nWorking directory: /elsewhere\n</env>' }],
    };
    expect(decide(body).reply).toMatchObject({ input: { file_path: '/elsewhere/a.txt' } });
  });

  it('answers an http step with that status and a malformed step as such', () => {
    expect(decide(request(prompt('stand-in: http 529'))).reply).toMatchObject({
      kind: 'error',
      status: 529,
    });
    expect(decide(request(prompt('stand-in: malformed'))).reply).toEqual({ kind: 'malformed' });
  });

  it('calls a tool step’s tool by name with its input as given', () => {
    expect(decide(request(prompt('stand-in: tool mcp__s__t {"q": 1}'))).reply).toEqual({
      kind: 'tool',
      name: 'mcp__s__t',
      input: { q: 1 },
    });
  });

  it('answers a line it cannot play with a 400 that quotes the line and the problem', () => {
    expect(decide(request(prompt('stand-in: fly away'))).reply).toEqual({
      kind: 'error',
      status: 400,
      message: expect.stringMatching(/cannot play "stand-in: fly away": unknown step "fly"/),
    });
  });

  it('echoes the first line of a prompt that has no script', () => {
    const long = `${'word '.repeat(40)}\nsecond line`;
    expect(decide(request(prompt('What is 2 + 2?\nThanks.')))).toEqual({
      scenario: 'no-script',
      steps: 0,
      reply: { kind: 'text', text: 'Scripted reply to: What is 2 + 2?' },
    });
    const reply = decide(request(prompt(long))).reply;
    expect(reply).toMatchObject({
      kind: 'text',
      text: expect.stringMatching(/^Scripted reply to: word .*…$/),
    });
    expect(reply.kind === 'text' && reply.text.length).toBeLessThan(120);
  });

  it('gives side requests a short text: no prompt at all, or no tools for a tool step', () => {
    expect(decide({ model: 'm', messages: [] })).toMatchObject({
      scenario: 'side-request',
      reply: { kind: 'text', text: 'OK.' },
    });
    expect(decide({ messages: [prompt('stand-in: bash rm -rf build')] })).toMatchObject({
      scenario: 'side-request',
      reply: { kind: 'text' },
    });
    expect(decide('not even an object')).toMatchObject({ scenario: 'side-request' });
  });

  it('reads a prompt given as a plain string', () => {
    const body = request({ role: 'user', content: 'hi\nstand-in: say plain' });
    expect(decide(body).reply).toEqual({ kind: 'text', text: 'plain' });
  });

  it('calls the StructuredOutput tool with the JSON of a structured step, priced as scripted', () => {
    const script = 'stand-in: usage 5000 7\nstand-in: structured {"a":[1]}';
    const body = {
      ...request(prompt(script)),
      tools: [...TOOLS, { name: 'StructuredOutput', input_schema: {} }],
    };
    expect(decide(body)).toMatchObject({
      scenario: 'step',
      stepKind: 'structured',
      reply: {
        kind: 'tool',
        name: 'StructuredOutput',
        input: { a: [1] },
        usage: { inputTokens: 5000, outputTokens: 7 },
      },
    });
  });
});
