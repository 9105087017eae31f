import {
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { validateJob, type JobLimits } from '../../../../src/worker/attempt/validate-job.js';

let root: string;
let workDir: string;
let limits: JobLimits;

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'claudebox-validate-')));
  workDir = join(root, 'work');
  mkdirSync(join(workDir, 'repo', 'src'), { recursive: true });
  mkdirSync(join(root, 'outside'));
  writeFileSync(join(workDir, 'notes.txt'), 'not a directory');
  symlinkSync(join(root, 'outside'), join(workDir, 'escape'));
  symlinkSync(join(workDir, 'repo'), join(workDir, 'repo-link'));
  limits = {
    workDir,
    maxPromptBytes: 100,
    maxTimeoutSeconds: 3600,
    allowedPermissionModes: ['default', 'plan'],
    profiles: new Map([
      ['github', {}],
      ['docs', {}],
    ]),
    scratchDir: null,
    runRoot: null,
    workspaceSources: [join(root, 'repos'), 'https://git.example.com/team/'],
    workspaceDir: join(workDir, '.claudebox-workspaces'),
  };
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('validateJob', () => {
  it('accepts a job naming no directory, to work in WORK_DIR', async () => {
    expect(await validateJob({ prompt: 'hi' }, limits)).toEqual({
      ok: true,
      request: { prompt: 'hi' },
      cwd: workDir,
    });
  });

  it('resolves a working directory inside WORK_DIR, through links that stay inside', async () => {
    expect(await validateJob({ prompt: 'hi', workingDir: 'repo/src' }, limits)).toMatchObject({
      ok: true,
      cwd: join(workDir, 'repo', 'src'),
    });
    expect(await validateJob({ prompt: 'hi', workingDir: 'repo-link' }, limits)).toMatchObject({
      ok: true,
      cwd: join(workDir, 'repo'),
    });
    expect(
      await validateJob({ prompt: 'hi', workingDir: join(workDir, 'repo') }, limits),
    ).toMatchObject({ ok: true, cwd: join(workDir, 'repo') });
  });

  it.each([
    ['../outside', 'resolves to', 'outside WORK_DIR'],
    ['escape', 'resolves to', 'outside WORK_DIR'],
    ['/', 'resolves to /', 'outside WORK_DIR'],
    ['missing', 'does not exist', 'looked for'],
    ['notes.txt', 'is not a directory', ''],
  ])('refuses the working directory %j', async (workingDir, first, second) => {
    const valid = await validateJob({ prompt: 'hi', workingDir }, limits);
    expect(valid.ok).toBe(false);
    if (valid.ok) return;
    expect(valid.reason).toContain(`workingDir: ${JSON.stringify(workingDir)}`);
    expect(valid.reason).toContain(first);
    expect(valid.reason).toContain(second);
  });

  it('accepts a workspace whose source WORKSPACE_SOURCES allows, to work in its checkout', async () => {
    for (const source of [
      join(root, 'repos', 'app'),
      `file://${join(root, 'repos', 'app')}`,
      'https://git.example.com/team/app.git',
    ]) {
      const data = { prompt: 'hi', workspace: { source, ref: 'main' } };
      expect(await validateJob(data, limits)).toMatchObject({ ok: true, request: data });
    }
  });

  it.each([
    [() => join(root, 'outside'), 'is not inside a directory this worker allows'],
    [() => join(root, 'repos-evil'), 'is not inside a directory this worker allows'],
    [() => 'https://git.example.com/other/app.git', 'does not start with a source this worker'],
    [() => 'https://git.example.com/team/../other/app', 'must not contain ".." segments'],
    // Escaped, as git or a server may decode them.
    [() => 'https://git.example.com/team/%2e%2e/other/app', 'must not contain ".." segments'],
    [() => 'https://git.example.com/team/..%2Fother/app', 'must not contain ".." segments'],
    [() => 'https://git.example.com/team/%zz', 'has a malformed %-escape'],
    // A file: URL is the path git decodes it to.
    [
      () => `file://${join(root, 'repos')}/%2e%2e/outside`,
      'is not inside a directory this worker allows',
    ],
    [
      () => `file://${join(root, 'repos')}/a%2F..%2F..%2Foutside`,
      'is not a file: URL of a local path',
    ],
  ])('refuses a workspace source WORKSPACE_SOURCES does not allow', async (source, reason) => {
    const valid = await validateJob(
      { prompt: 'hi', workspace: { source: source(), ref: 'main' } },
      limits,
    );
    expect(valid).toMatchObject({ ok: false });
    if (valid.ok) return;
    expect(valid.reason).toContain(`workspace.source: ${JSON.stringify(source())}`);
    expect(valid.reason).toContain(reason);
  });

  it('refuses every workspace when WORKSPACE_SOURCES is empty, saying so', async () => {
    const data = { prompt: 'hi', workspace: { source: join(root, 'repos', 'app'), ref: 'main' } };
    const valid = await validateJob(data, { ...limits, workspaceSources: [] });
    expect(valid).toMatchObject({ ok: false });
    if (!valid.ok) expect(valid.reason).toContain('WORKSPACE_SOURCES is empty');
  });

  it('refuses a workspace together with a workingDir, and a ref that reads as an option', async () => {
    const source = join(root, 'repos', 'app');
    const both = await validateJob(
      { prompt: 'hi', workingDir: 'repo', workspace: { source, ref: 'main' } },
      limits,
    );
    expect(both).toMatchObject({ ok: false });
    if (!both.ok) expect(both.reason).toContain('workspace: cannot go with workingDir');
    const option = await validateJob(
      { prompt: 'hi', workspace: { source, ref: '--upload-pack=x' } },
      limits,
    );
    expect(option).toMatchObject({ ok: false });
    if (!option.ok)
      expect(option.reason).toContain('workspace.ref: must be a branch, tag or commit name');
  });

  it("refuses a workingDir or addDirs in WORKSPACE_DIR, where other jobs' checkouts are", async () => {
    mkdirSync(join(workDir, '.claudebox-workspaces', 'checkouts', 'a'), { recursive: true });
    for (const data of [
      { prompt: 'hi', workingDir: '.claudebox-workspaces/checkouts/a' },
      { prompt: 'hi', workingDir: 'repo', addDirs: ['.claudebox-workspaces'] },
    ]) {
      const valid = await validateJob(data, limits);
      expect(valid).toMatchObject({ ok: false });
      if (!valid.ok) expect(valid.reason).toContain('is in WORKSPACE_DIR');
    }
  });

  it('does not take a directory whose name only starts like WORK_DIR for one inside it', async () => {
    mkdirSync(`${workDir}-other`);
    const valid = await validateJob({ prompt: 'hi', workingDir: '../work-other' }, limits);
    expect(valid).toMatchObject({ ok: false });
  });

  it('takes a directory inside WORK_DIR whose name begins with two dots', async () => {
    mkdirSync(join(workDir, '..cache'));
    expect(await validateJob({ prompt: 'hi', workingDir: '..cache' }, limits)).toMatchObject({
      ok: true,
      cwd: join(workDir, '..cache'),
    });
  });

  it("names every problem the job's data has against this worker's limits in one reason", async () => {
    const valid = await validateJob(
      {
        prompt: 'é'.repeat(51),
        timeout: 7200,
        permissionMode: 'bypassPermissions',
        workingDir: 'missing',
      },
      limits,
    );
    expect(valid).toEqual({
      ok: false,
      reason: [
        'prompt: is 102 bytes, over the limit of 100 (MAX_PROMPT_BYTES)',
        'timeout: 7200 seconds is over the limit of 3600 (MAX_TIMEOUT_SECONDS)',
        'permissionMode: bypassPermissions is not allowed on this worker (ALLOWED_PERMISSION_MODES=default,plan)',
        `workingDir: "missing" does not exist (looked for ${join(workDir, 'missing')})`,
      ].join('; '),
    });
  });

  it('accepts a job right at the limits', async () => {
    const valid = await validateJob(
      { prompt: 'x'.repeat(100), timeout: 3600, permissionMode: 'plan' },
      limits,
    );
    expect(valid.ok).toBe(true);
  });

  it('takes an idle timeout as a positive number of seconds', async () => {
    expect(await validateJob({ prompt: 'hi', idleTimeout: 90 }, limits)).toMatchObject({
      ok: true,
      request: { idleTimeout: 90 },
    });
    expect(await validateJob({ prompt: 'hi', idleTimeout: 0 }, limits)).toEqual({
      ok: false,
      reason: 'idleTimeout: must be a positive number of seconds',
    });
    expect(await validateJob({ prompt: 'hi', idleTimeout: '60' }, limits)).toEqual({
      ok: false,
      reason: 'idleTimeout: must be a number of seconds',
    });
  });

  it('reports what the contract refuses before looking at the machine', async () => {
    expect(await validateJob({ workingDir: 'missing', extra: 1 }, limits)).toEqual({
      ok: false,
      reason: 'prompt: is required; extra: unknown field',
    });
    expect(await validateJob('just a prompt', limits)).toEqual({
      ok: false,
      reason: 'job data: must be a JSON object, got string',
    });
  });

  it('takes a profile of the worker by name, and names the known ones for any other', async () => {
    expect(await validateJob({ prompt: 'hi', profile: 'docs' }, limits)).toMatchObject({
      ok: true,
      request: { profile: 'docs' },
    });
    expect(await validateJob({ prompt: 'hi', profile: 'gitlab' }, limits)).toEqual({
      ok: false,
      reason: 'profile: "gitlab" is not a profile of this worker (known: docs, github)',
    });
    expect(
      await validateJob({ prompt: 'hi', profile: 'docs' }, { ...limits, profiles: new Map() }),
    ).toEqual({
      ok: false,
      reason: 'profile: "docs" is not a profile of this worker, which has none (PROFILES_FILE)',
    });
    expect(await validateJob({ prompt: 'hi', profile: '../etc' }, limits)).toEqual({
      ok: false,
      reason: 'profile: must be a profile name: 1 to 64 letters, digits, . _ or -',
    });
  });

  describe('with run isolation', () => {
    it('gives a job that names no directory its scratch directory, without making it yet', async () => {
      const scratchDir = join(root, 'scratch', 'job-1');
      const valid = await validateJob({ prompt: 'hi' }, { ...limits, scratchDir });
      expect(valid).toMatchObject({ ok: true, cwd: scratchDir });
      expect(() => statSync(scratchDir)).toThrow();
    });

    it('refuses WORK_DIR itself, which every job shares', async () => {
      const scratchDir = join(root, 'scratch', 'job-1');
      for (const workingDir of ['.', workDir, 'repo/..']) {
        const valid = await validateJob({ prompt: 'hi', workingDir }, { ...limits, scratchDir });
        expect(valid).toMatchObject({ ok: false });
        if (!valid.ok) expect(valid.reason).toContain('is WORK_DIR itself, which every job shares');
      }
      expect(() => statSync(scratchDir)).toThrow();
    });

    it('still takes a directory inside WORK_DIR', async () => {
      const scratchDir = join(root, 'scratch', 'job-1');
      const valid = await validateJob(
        { prompt: 'hi', workingDir: 'repo' },
        { ...limits, scratchDir },
      );
      expect(valid).toMatchObject({ ok: true, cwd: join(workDir, 'repo') });
    });
  });

  it.each([
    [{ fallbackModel: '--model=x' }, 'fallbackModel: must be a model name or alias'],
    [{ systemPrompt: '' }, 'systemPrompt: must not be empty'],
    [{ systemPrompt: 'a\u0000b' }, 'systemPrompt: must not contain NUL'],
    [{ systemPrompt: 'x'.repeat(64 * 1024 + 1) }, 'systemPrompt: must be at most 65536 bytes'],
    [{ tools: 'Read' }, 'tools: must be a list of built-in tool names'],
    [
      { tools: ['Bash(git:*)'] },
      'tools.0: "Bash(git:*)" is not a built-in tool name such as "Read"',
    ],
    [{ tools: ['Read,Write'] }, 'tools.0: "Read,Write" is not a built-in tool name'],
    [{ effort: 'extreme' }, 'effort: must be one of low, medium, high, xhigh, max'],
    [{ addDirs: [] }, 'addDirs: must name at least one directory'],
    [{ addDirs: [''] }, 'addDirs.0: must not be empty'],
    [{ addDirs: Array(33).fill('repo') }, 'addDirs: must name at most 32 directories'],
    [{ includePartialMessages: 'yes' }, 'includePartialMessages: must be true or false'],
    [{ forkSession: 1 }, 'forkSession: must be true or false'],
    [
      { resumeSessionId: '1B4E28BA-2FA1-11D2-883F-0016D3CCA427' },
      'resumeSessionId: must be in lower case, as the CLI writes session ids',
    ],
    [
      { forkSession: true },
      'forkSession: needs resumeSessionId: only a resumed session can be forked',
    ],
    [
      { permissionMode: 'manul' },
      'permissionMode: must be one of acceptEdits, auto, bypassPermissions, default, dontAsk, manual, plan',
    ],
  ])('refuses the request field %j, naming it', async (fields, reason) => {
    const valid = await validateJob({ prompt: 'hi', ...fields }, limits);
    expect(valid).toMatchObject({ ok: false });
    if (!valid.ok) expect(valid.reason).toContain(reason);
  });

  // Linux refuses an argument over 128 KiB at spawn (E2BIG), on every attempt alike.
  it('refuses a tool list or model name too long for one command-line argument, naming the field and the limit', async () => {
    const cases: [object, string][] = [
      [
        { allowedTools: Array(1000).fill(`Bash(${'x'.repeat(100)}:*)`) },
        'allowedTools: must be at most 65536 bytes, joined by commas',
      ],
      [
        { allowedTools: Array(1025).fill('Bash') },
        'allowedTools: must name at most 1024 tool rules',
      ],
      [
        { disallowedTools: [`Bash(${'x'.repeat(200_000)})`] },
        'disallowedTools: must be at most 65536 bytes, joined by commas',
      ],
      [
        { tools: Array(64).fill('R'.repeat(1100)) },
        'tools: must be at most 65536 bytes, joined by commas',
      ],
      [{ model: 'm'.repeat(257) }, 'model: must be at most 256 characters'],
      [{ fallbackModel: 'm'.repeat(257) }, 'fallbackModel: must be at most 256 characters'],
    ];
    for (const [fields, reason] of cases) {
      expect(await validateJob({ prompt: 'hi', ...fields }, limits)).toEqual({ ok: false, reason });
    }
  });

  it('takes a tool list and a model name right at their limits', async () => {
    const rules = (joinedBytes: number) => [
      'Read',
      `Bash(${'x'.repeat(joinedBytes - 'Read,Bash()'.length)})`,
    ];
    expect(await validateJob({ prompt: 'hi', allowedTools: rules(65536) }, limits)).toMatchObject({
      ok: true,
    });
    expect(await validateJob({ prompt: 'hi', allowedTools: rules(65537) }, limits)).toMatchObject({
      ok: false,
    });
    const many = Array<string>(1024).fill('Bash');
    expect(await validateJob({ prompt: 'hi', allowedTools: many }, limits)).toMatchObject({
      ok: true,
    });
    expect(await validateJob({ prompt: 'hi', model: 'm'.repeat(256) }, limits)).toMatchObject({
      ok: true,
    });
  });

  it('accepts every later field at its simplest, and forkSession with the session to fork', async () => {
    const request = {
      prompt: 'hi',
      fallbackModel: 'sonnet',
      systemPrompt: 'You are terse.',
      appendSystemPrompt: 'And kind.',
      tools: [],
      effort: 'max',
      includePartialMessages: true,
      resumeSessionId: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
      forkSession: true,
      permissionMode: 'default',
    };
    expect(await validateJob(request, limits)).toEqual({ ok: true, request, cwd: workDir });
  });

  it('hands the CLI each of addDirs as a real path inside WORK_DIR, and refuses any outside', async () => {
    const valid = await validateJob({ prompt: 'hi', addDirs: ['repo-link', 'repo/src'] }, limits);
    expect(valid).toMatchObject({
      ok: true,
      request: { addDirs: [join(workDir, 'repo'), join(workDir, 'repo', 'src')] },
    });
    const refused = await validateJob(
      { prompt: 'hi', addDirs: ['escape', 'missing', 'notes.txt'] },
      limits,
    );
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.reason).toContain('addDirs: "escape" resolves to');
    expect(refused.reason).toContain('outside WORK_DIR');
    expect(refused.reason).toContain('addDirs: "missing" does not exist');
    expect(refused.reason).toContain('addDirs: "notes.txt" is not a directory');
  });

  it('with run isolation, refuses a directory holding WORKSPACE_DIR, or in or holding RUN_ROOT, which a run would be handed', async () => {
    mkdirSync(join(workDir, 'data', 'ws'), { recursive: true });
    mkdirSync(join(workDir, 'var', 'run-root', 'scratch'), { recursive: true });
    const isolated = {
      ...limits,
      workspaceDir: join(workDir, 'data', 'ws'),
      runRoot: join(workDir, 'var', 'run-root'),
      scratchDir: join(workDir, 'var', 'run-root', 'scratch', 'job-1'),
    };
    const reasonOf = async (request: object, given: JobLimits = isolated) => {
      const validated = await validateJob({ prompt: 'hi', ...request }, given);
      return validated.ok ? 'accepted' : validated.reason;
    };
    expect(await reasonOf({ workingDir: 'data' })).toBe(
      `workingDir: "data" holds WORKSPACE_DIR ${join(workDir, 'data', 'ws')}, where jobs' workspaces are kept; with run isolation a run would be handed it`,
    );
    expect(await reasonOf({ workingDir: 'repo', addDirs: ['var'] })).toBe(
      `addDirs: "var" holds RUN_ROOT ${join(workDir, 'var', 'run-root')}, where runs' homes and the worker's uid leases are; with run isolation a run would be handed it`,
    );
    expect(await reasonOf({ workingDir: 'var/run-root/scratch' })).toContain(
      'workingDir: "var/run-root/scratch" is in RUN_ROOT',
    );
    expect(await reasonOf({ workingDir: 'repo' })).toBe('accepted');
    // Without isolation a run is root's and reaches all of them anyway: nothing is handed.
    const unisolated = { ...isolated, scratchDir: null, runRoot: null };
    expect(await reasonOf({ workingDir: 'data' }, unisolated)).toBe('accepted');
  });

  it('with run isolation, takes addDirs anywhere inside WORK_DIR but WORK_DIR itself', async () => {
    const isolated = { ...limits, scratchDir: join(root, 'scratch', 'job-1') };
    mkdirSync(join(workDir, 'other'));
    expect(
      await validateJob({ prompt: 'hi', workingDir: 'repo', addDirs: ['other'] }, isolated),
    ).toMatchObject({ ok: true, request: { addDirs: [join(workDir, 'other')] } });
    expect(await validateJob({ prompt: 'hi', addDirs: ['.'] }, isolated)).toEqual({
      ok: false,
      reason:
        'addDirs: "." is WORK_DIR itself, which every job shares; with run isolation name a directory inside it',
    });
  });

  it('with run isolation, refuses addDirs inside the workingDir, holding it, or inside one another', async () => {
    const isolated = { ...limits, scratchDir: join(root, 'scratch', 'job-1') };
    mkdirSync(join(workDir, 'other', 'deep'), { recursive: true });
    const apart =
      'are one inside the other; with run isolation the directories of a run must be apart';
    const reasonOf = async (request: object) => {
      const validated = await validateJob({ prompt: 'hi', ...request }, isolated);
      return validated.ok ? 'accepted' : validated.reason;
    };
    expect(await reasonOf({ workingDir: 'repo', addDirs: ['repo/src'] })).toBe(
      `addDirs "repo/src" and workingDir "repo" ${apart}`,
    );
    expect(await reasonOf({ workingDir: 'repo/src', addDirs: ['other', 'repo-link'] })).toBe(
      `addDirs "repo-link" and workingDir "repo/src" ${apart}`,
    );
    expect(await reasonOf({ addDirs: ['other', 'other/deep'] })).toBe(
      `addDirs "other/deep" and addDirs "other" ${apart}`,
    );
    expect(await reasonOf({ workingDir: 'repo', addDirs: ['other/deep'] })).toBe('accepted');
    // Without run isolation nothing is handed over: one inside another is fine.
    expect(
      await validateJob({ prompt: 'hi', workingDir: 'repo', addDirs: ['repo/src'] }, limits),
    ).toMatchObject({ ok: true });
  });
});
