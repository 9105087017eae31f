import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/config.js';
import { fillSecrets } from '../../../src/config/profile-values.js';
import { loadProfiles, profileFiles, type Profile } from '../../../src/config/profiles.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'claudebox-profiles-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a profiles file and loads it. */
async function load(content: unknown): Promise<Map<string, Profile>> {
  const path = join(dir, 'profiles.json');
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return new Map(await loadProfiles(path));
}

/** The message a file with these profiles is refused with. */
async function refusal(profiles: unknown): Promise<string> {
  const error = await load({ profiles }).then(
    () => null,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).message;
}

const GITHUB = {
  description: 'GitHub issues',
  mcpServers: {
    github: {
      type: 'http',
      url: 'https://api.example.com/mcp/',
      headers: { Authorization: 'Bearer ${env:GITHUB_TOKEN}' },
    },
    local: { command: '/usr/bin/node', args: ['server.js'], env: { TOKEN: '${env:LOCAL_TOKEN}' } },
  },
  settings: { permissions: { deny: ['WebFetch'] }, env: { GH_HOST: 'github.com' } },
  settingSources: ['project'],
};

describe('loadProfiles', () => {
  it('has no profiles when PROFILES_FILE is not set', async () => {
    expect(await loadProfiles(undefined)).toEqual(new Map());
  });

  it('reads profiles by name: MCP servers (stdio by default), settings and setting sources', async () => {
    const profiles = await load({ profiles: { github: GITHUB, bare: {} } });
    expect([...profiles.keys()]).toEqual(['github', 'bare']);
    expect(profiles.get('github')?.mcpServers?.local).toEqual({
      type: 'stdio',
      command: '/usr/bin/node',
      args: ['server.js'],
      env: { TOKEN: '${env:LOCAL_TOKEN}' },
    });
    expect(profiles.get('github')?.settingSources).toEqual(['project']);
  });

  it('names the file when it cannot be read or is not JSON', async () => {
    await expect(loadProfiles(join(dir, 'missing.json'))).rejects.toThrow(
      /PROFILES_FILE=.*missing\.json: ENOENT/,
    );
    await expect(load('{ not json')).rejects.toThrow(/PROFILES_FILE=.*profiles\.json: .*JSON/);
    await expect(load({ github: GITHUB })).rejects.toThrow(/profiles: must be an object/);
  });

  it('names the profile and the field of each problem', async () => {
    const message = await refusal({
      github: {
        mcpServers: {
          github: { type: 'http', url: 'ftp://example.com' },
          other: { type: 'websocket', url: 'ws://x' },
          empty: { command: ' ' },
        },
        settingSources: ['user', 'policy'],
        colour: 'blue',
      },
    });
    expect(message).toContain(
      'profile "github": mcpServers.github.url: must be an http:// or https:// URL',
    );
    expect(message).toContain(
      'profile "github": mcpServers.other.type: must be stdio (the default), http or sse',
    );
    expect(message).toContain('profile "github": mcpServers.empty.command: must not be empty');
    expect(message).toContain(
      'profile "github": settingSources.1: must be one of user, project, local',
    );
    expect(message).toContain('profile "github": colour: unknown field');
  });

  it('refuses profile and server names a job or a tool name could not carry', async () => {
    expect(await refusal({ 'no spaces': {} })).toContain('a profile name is 1 to 64');
    expect(await refusal({ ok: { mcpServers: { a__b: { command: 'x' } } } })).toContain(
      'a server name is letters, digits, - and single _',
    );
  });

  it('refuses hooks and other commands in settings unless the profile allows them', async () => {
    const hooks = { PreToolUse: [{ hooks: [{ type: 'command', command: 'true' }] }] };
    const message = await refusal({ ci: { settings: { hooks, apiKeyHelper: 'cat key' } } });
    expect(message).toContain('profile "ci": settings.hooks: makes the CLI run commands');
    expect(message).toContain('profile "ci": settings.apiKeyHelper: makes the CLI run commands');
    expect(message).toContain('"allowHooks": true');
    const allowed = await load({ profiles: { ci: { settings: { hooks }, allowHooks: true } } });
    expect(allowed.get('ci')?.settings).toEqual({ hooks });
  });

  it('checks every ${env:NAME} reference, in servers and settings alike', async () => {
    const message = await refusal({
      p: {
        mcpServers: { s: { command: 'x', env: { A: '${env:not-a-name}', B: '${env:REDIS_URL}' } } },
        settings: { env: { C: 'x${env:UNCLOSED' } },
      },
    });
    expect(message).toContain('profile "p": mcpServers.s.env.A: "${env:not-a-name}" does not name');
    expect(message).toContain(
      'profile "p": mcpServers.s.env.B: ${env:REDIS_URL} is the worker\'s own secret',
    );
    expect(message).toContain('profile "p": settings.env.C: an unclosed reference');
  });
});

describe('fillSecrets', () => {
  it('fills every reference in nested strings from the environment, leaving keys alone', () => {
    const filled = fillSecrets(
      { '${env:KEY}': ['a ${env:ONE} b ${env:TWO}'], n: 1, nested: { v: '${env:ONE}' } },
      { ONE: '1', TWO: '2', KEY: 'k' },
    );
    expect(filled).toEqual({
      ok: true,
      value: { '${env:KEY}': ['a 1 b 2'], n: 1, nested: { v: '1' } },
    });
  });

  it('names each variable that is not set or empty, and no value', () => {
    const filled = fillSecrets(['${env:SET}', '${env:UNSET}', '${env:EMPTY}', '${env:UNSET}'], {
      SET: 'the-value',
      EMPTY: '',
    });
    expect(filled).toEqual({ ok: false, missing: ['EMPTY', 'UNSET'] });
    expect(JSON.stringify(filled)).not.toContain('the-value');
  });
});

describe('profileFiles', () => {
  it('gives the CLI its mcpServers file and settings file with the secrets filled in', async () => {
    const profile = (await load({ profiles: { github: GITHUB } })).get('github') as Profile;
    const files = profileFiles(profile, { GITHUB_TOKEN: 'ghp_1', LOCAL_TOKEN: 'loc_2' });
    expect(files.ok).toBe(true);
    if (!files.ok) return;
    const mcp = JSON.parse(files.value.mcpConfig ?? '{}') as Record<
      string,
      Record<string, unknown>
    >;
    expect(mcp.mcpServers?.github).toMatchObject({ headers: { Authorization: 'Bearer ghp_1' } });
    expect(mcp.mcpServers?.local).toMatchObject({ env: { TOKEN: 'loc_2' } });
    expect(JSON.parse(files.value.settings ?? '{}')).toEqual(GITHUB.settings);
    expect(files.value.settingSources).toEqual(['project']);
  });

  it('writes no file for what a profile leaves out', () => {
    expect(profileFiles({}, {})).toEqual({
      ok: true,
      value: { mcpConfig: null, settings: null, settingSources: [] },
    });
  });
});
