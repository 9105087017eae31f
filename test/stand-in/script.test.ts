import { describe, expect, it } from 'vitest';
import { fillResult, hasScript, parseScript, parseStep } from '../../tools/stand-in/script.js';

describe('the stand-in script', () => {
  it('takes only `stand-in:` lines, in order, and ignores the rest of the prompt', () => {
    const prompt = [
      'Please fix the build.',
      'stand-in: bash npm test',
      '  stand-in:   say  all good  ',
      'This line mentions stand-in: but does not start with it.',
      'stand-in: malformed',
    ].join('\n');

    expect(parseScript(prompt)).toEqual([
      { kind: 'bash', command: 'npm test' },
      { kind: 'say', text: 'all good' },
      { kind: 'malformed' },
    ]);
    expect(hasScript(prompt)).toBe(true);
    expect(hasScript('no script here, not even a stand-in: in the middle')).toBe(false);
    expect(parseScript('just a question')).toEqual([]);
  });

  it('reads Windows line endings like Unix ones', () => {
    expect(parseScript('hi\r\nstand-in: say one\r\nstand-in: say two\r\n')).toEqual([
      { kind: 'say', text: 'one' },
      { kind: 'say', text: 'two' },
    ]);
  });

  it('say: answers with the text, with \\n as a newline and \\\\ as a backslash', () => {
    expect(parseStep('say Hello\\nworld \\\\n')).toEqual({ kind: 'say', text: 'Hello\nworld \\n' });
  });

  it('bash: keeps the command verbatim, backslashes and quotes included', () => {
    expect(parseStep(`bash printf 'a\\nb' > out.txt && echo "done"`)).toEqual({
      kind: 'bash',
      command: `printf 'a\\nb' > out.txt && echo "done"`,
    });
  });

  it('write: the first word is the path, the rest the content, \\n a newline', () => {
    expect(parseStep('write notes/todo.md # Todo\\n- one thing')).toEqual({
      kind: 'write',
      path: 'notes/todo.md',
      content: '# Todo\n- one thing',
    });
    expect(parseStep('write empty.txt')).toEqual({ kind: 'write', path: 'empty.txt', content: '' });
  });

  it('read: the whole rest of the line is the path', () => {
    expect(parseStep('read /tmp/some file.txt')).toEqual({
      kind: 'read',
      path: '/tmp/some file.txt',
    });
  });

  it('edit: path, old and new text separated by ` :: `; an empty new text deletes', () => {
    expect(parseStep('edit src/a.ts :: const x = 1; :: const x = 2;')).toEqual({
      kind: 'edit',
      path: 'src/a.ts',
      oldText: 'const x = 1;',
      newText: 'const x = 2;',
    });
    expect(parseStep('edit a.txt :: line one\\nline two :: ')).toEqual({
      kind: 'edit',
      path: 'a.txt',
      oldText: 'line one\nline two',
      newText: '',
    });
    expect(parseStep('edit a.cpp :: std::string :: std::wstring')).toMatchObject({
      oldText: 'std::string',
      newText: 'std::wstring',
    });
  });

  it('http: takes an error status from 400 to 599', () => {
    expect(parseStep('http 500')).toEqual({ kind: 'http', status: 500 });
    expect(parseStep('http 401')).toEqual({ kind: 'http', status: 401 });
    expect(parseStep('http 200')).toMatchObject({ kind: 'invalid', line: 'http 200' });
    expect(parseStep('http soon')).toMatchObject({ kind: 'invalid' });
  });

  it('http: takes a retry-after in seconds and how many times to answer it per session', () => {
    expect(parseStep('http 429 retry-after=3 times=2')).toEqual({
      kind: 'http',
      status: 429,
      retryAfter: 3,
      times: 2,
    });
    expect(parseStep('http 529 once')).toEqual({ kind: 'http', status: 529, times: 1 });
    expect(parseStep('http 429 retry-after=soon')).toMatchObject({
      kind: 'invalid',
      problem: expect.stringContaining('retry-after=<seconds>, times=<n> or once'),
    });
    expect(parseStep('http 429 times=0')).toMatchObject({ kind: 'invalid' });
  });

  it('malformed: takes no argument', () => {
    expect(parseStep('malformed')).toEqual({ kind: 'malformed' });
    expect(parseStep('malformed please')).toMatchObject({ kind: 'invalid' });
  });

  it('tool: any tool by name, with a JSON object as its input ({} when none is given)', () => {
    expect(parseStep('tool mcp__vault__secret_digest {"label": "a b", "n": [1]}')).toEqual({
      kind: 'tool',
      name: 'mcp__vault__secret_digest',
      input: { label: 'a b', n: [1] },
    });
    expect(parseStep('tool ListMcpResourcesTool')).toEqual({
      kind: 'tool',
      name: 'ListMcpResourcesTool',
      input: {},
    });
    expect(parseStep('tool')).toMatchObject({ kind: 'invalid', problem: /needs a tool name/ });
    expect(parseStep('tool x {label}')).toMatchObject({ kind: 'invalid', problem: /not JSON/ });
    expect(parseStep('tool x [1]')).toMatchObject({ kind: 'invalid', problem: /JSON object/ });
  });

  it('structured: takes a JSON object for the StructuredOutput tool, verbatim', () => {
    expect(parseStep('structured {"verdict":"ok","items":[1,2],"note":"a\\nb"}')).toEqual({
      kind: 'structured',
      value: { verdict: 'ok', items: [1, 2], note: 'a\nb' },
    });
    expect(parseStep('structured [1]')).toMatchObject({ kind: 'invalid', problem: /JSON object/ });
    expect(parseStep('structured {oops')).toMatchObject({
      kind: 'invalid',
      problem: /JSON object/,
    });
    expect(parseStep('structured')).toMatchObject({ kind: 'invalid' });
  });

  it('usage: prices the step after it, and is no step of its own', () => {
    const script = [
      'stand-in: usage 100000 20',
      'stand-in: bash echo one',
      'stand-in: say unpriced',
      'stand-in: usage 0 5',
      'stand-in: structured {"a":1}',
    ].join('\n');
    expect(parseScript(script)).toEqual([
      { kind: 'bash', command: 'echo one', usage: { inputTokens: 100000, outputTokens: 20 } },
      { kind: 'say', text: 'unpriced' },
      { kind: 'structured', value: { a: 1 }, usage: { inputTokens: 0, outputTokens: 5 } },
    ]);
  });

  it('usage: needs two token counts and a step after it', () => {
    expect(parseScript('stand-in: usage 10\nstand-in: say hi')).toEqual([
      expect.objectContaining({ kind: 'invalid', problem: expect.stringContaining('needs') }),
      { kind: 'say', text: 'hi' },
    ]);
    expect(parseScript('stand-in: say hi\nstand-in: usage 10 10')).toEqual([
      { kind: 'say', text: 'hi' },
      expect.objectContaining({ kind: 'invalid', problem: expect.stringContaining('before') }),
    ]);
    expect(parseScript('stand-in: usage -1 2\nstand-in: say hi')[0]).toMatchObject({
      kind: 'invalid',
    });
  });

  it('turns a line it cannot play into an invalid step that says what is wrong', () => {
    expect(parseStep('dance wildly')).toEqual({
      kind: 'invalid',
      line: 'dance wildly',
      problem: expect.stringContaining('unknown step "dance"'),
    });
    expect(parseStep('')).toMatchObject({ kind: 'invalid', problem: /empty step/ });
    expect(parseStep('say')).toMatchObject({ kind: 'invalid', problem: /needs a text/ });
    expect(parseStep('bash')).toMatchObject({ kind: 'invalid', problem: /needs a command/ });
    expect(parseStep('edit a.txt :: only old')).toMatchObject({ kind: 'invalid' });
    // Invalid lines keep their place, so the steps after them are counted as written.
    expect(parseScript('stand-in: nope\nstand-in: say two').map((s) => s.kind)).toEqual([
      'invalid',
      'say',
    ]);
  });

  it('{{result}} stands for the latest tool result, or nothing when there is none', () => {
    expect(fillResult('got {{result}} ({{result}})', 'x')).toBe('got x (x)');
    expect(fillResult('got {{result}}', undefined)).toBe('got ');
  });
});
