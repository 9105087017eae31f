import { describe, expect, it } from 'vitest';
import { DEFAULT_ALLOWED_TOOLS } from '../../../src/contract/index.js';
import { buildArgs } from '../../../src/executor/args.js';

const SESSION = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
/** Every run: no MCP server but the profile's, no settings from user, project or local files. */
const STRICT = ['--strict-mcp-config', '--setting-sources='];

describe('buildArgs', () => {
  it('asks for stream-json and the default tools, and never carries the prompt', () => {
    const args = buildArgs({ prompt: 'a secret prompt' }, { mode: 'none' });
    expect(args).toEqual([
      '-p',
      '--verbose',
      '--output-format',
      'stream-json',
      `--allowedTools=${DEFAULT_ALLOWED_TOOLS.join(',')}`,
      ...STRICT,
    ]);
    expect(args.join(' ')).not.toContain('secret');
  });

  it('starts a session with the id fixed up front, or resumes one', () => {
    expect(buildArgs({ prompt: 'p' }, { mode: 'new', sessionId: SESSION })).toContain(
      `--session-id=${SESSION}`,
    );
    const resumed = buildArgs({ prompt: 'p' }, { mode: 'resume', sessionId: SESSION });
    expect(resumed).toContain(`--resume=${SESSION}`);
    expect(resumed.some((arg) => arg.startsWith('--session-id'))).toBe(false);
  });

  it('passes every option of the request as one --flag=value argument', () => {
    const args = buildArgs(
      {
        prompt: 'p',
        allowedTools: ['Read', 'Bash(git diff:*)'],
        disallowedTools: ['WebFetch'],
        model: 'claude-sonnet-4-5',
        maxTurns: 7,
        permissionMode: 'plan',
        appendSystemPrompt: 'Be brief.',
      },
      { mode: 'none' },
    );
    expect(args.slice(4)).toEqual([
      '--allowedTools=Read,Bash(git diff:*)',
      '--disallowedTools=WebFetch',
      '--model=claude-sonnet-4-5',
      '--max-turns=7',
      '--permission-mode=plan',
      '--append-system-prompt=Be brief.',
      ...STRICT,
    ]);
  });

  it('keeps a value that starts with a dash inside its flag', () => {
    const args = buildArgs(
      { prompt: 'p', appendSystemPrompt: '--dangerously-skip-permissions' },
      { mode: 'none' },
    );
    expect(args).toContain('--append-system-prompt=--dangerously-skip-permissions');
    expect(args).not.toContain('--dangerously-skip-permissions');
  });

  it('leaves out tool lists that are empty', () => {
    const args = buildArgs(
      { prompt: 'p', allowedTools: [], disallowedTools: [] },
      { mode: 'none' },
    );
    expect(args).toEqual(['-p', '--verbose', '--output-format', 'stream-json', ...STRICT]);
  });

  it('loads MCP servers and settings only from the files of the run’s profile, and settings only from the sources it allows', () => {
    const args = buildArgs(
      { prompt: 'p' },
      { mode: 'none' },
      {
        runConfig: {
          mcpConfigFile: '/run/home/.claude/profile-mcp.json',
          settingsFile: '/run/home/.claude/profile-settings.json',
          settingSources: ['project', 'local'],
        },
      },
    );
    expect(args.slice(-4)).toEqual([
      '--strict-mcp-config',
      '--setting-sources=project,local',
      '--mcp-config=/run/home/.claude/profile-mcp.json',
      '--settings=/run/home/.claude/profile-settings.json',
    ]);
  });

  it('caps the attempt at the budget it is given and passes the JSON Schema as one argument', () => {
    const jsonSchema = {
      type: 'object',
      properties: { a: { type: 'string', description: 'a b' } },
    };
    const args = buildArgs(
      { prompt: 'p', maxBudgetUsd: 5, jsonSchema },
      { mode: 'none' },
      { budgetUsd: 0.2 },
    );
    expect(args.slice(-2)).toEqual(STRICT);
    expect(args.slice(-4, -2)).toEqual([
      '--max-budget-usd=0.2',
      `--json-schema=${JSON.stringify(jsonSchema)}`,
    ]);
  });

  it('passes the model, prompt and tool fields as one argument each, and an empty tools list as `--tools=`', () => {
    const args = buildArgs(
      {
        prompt: 'p',
        allowedTools: [],
        fallbackModel: 'claude-haiku-4-5',
        systemPrompt: '--You are terse.',
        tools: [],
        effort: 'xhigh',
        addDirs: ['/work/a', '/work/b c'],
        includePartialMessages: true,
      },
      { mode: 'none' },
    );
    expect(args.slice(4)).toEqual([
      '--fallback-model=claude-haiku-4-5',
      '--system-prompt=--You are terse.',
      '--tools=',
      '--effort=xhigh',
      '--add-dir=/work/a',
      '--add-dir=/work/b c',
      '--include-partial-messages',
      ...STRICT,
    ]);
    expect(buildArgs({ prompt: 'p', tools: ['Read', 'Bash'] }, { mode: 'none' })).toContain(
      '--tools=Read,Bash',
    );
    expect(
      buildArgs({ prompt: 'p', includePartialMessages: false }, { mode: 'none' }),
    ).not.toContain('--include-partial-messages');
  });

  it('forks a session into the id fixed up front, or into one the CLI picks', () => {
    const OTHER = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
    const fixed = buildArgs({ prompt: 'p' }, { mode: 'fork', from: SESSION, sessionId: OTHER });
    expect(fixed.slice(4, 7)).toEqual([
      `--resume=${SESSION}`,
      '--fork-session',
      `--session-id=${OTHER}`,
    ]);
    const picked = buildArgs({ prompt: 'p' }, { mode: 'fork', from: SESSION, sessionId: null });
    expect(picked.slice(4, 6)).toEqual([`--resume=${SESSION}`, '--fork-session']);
    expect(picked.some((arg) => arg.startsWith('--session-id'))).toBe(false);
  });
});
