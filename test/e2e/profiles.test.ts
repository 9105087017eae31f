import { createHash, randomUUID } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent, ExecuteResult } from '../../src/contract/index.js';
import { startStandIn, type StandIn } from '../../tools/stand-in/index.js';
import { findRealClaude, privateClaudeEnv, type PrivateClaudeEnv } from '../support/real-claude.js';
import {
  collectEvents,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

const FIXTURE = new URL('../fixtures/mcp/secret-digest-server.mjs', import.meta.url).pathname;
/**
 * Where the profile's server lives: a run's sandbox empties /tmp, where a checkout of this
 * repository may be, so the server is installed where every run can read it, as an operator's
 * servers are (docs/operations.md#profiles).
 */
const serverDir = mkdtempSync('/var/lib/claudebox-test-mcp-');
chmodSync(serverDir, 0o755);
const SERVER = join(serverDir, 'secret-digest-server.mjs');
copyFileSync(FIXTURE, SERVER);
chmodSync(SERVER, 0o644);
const SECRET = `s3cret-${randomUUID()}`;
const DIGEST = `sha256:${createHash('sha256').update(SECRET).digest('hex')}`;

/** A server of the fixture, as a profile or a repository's `.mcp.json` names it. */
const server = (secret: string): Record<string, unknown> => ({
  command: process.execPath,
  args: [SERVER],
  // Slower to start than the stand-in is to answer, as real servers are.
  env: { SECRET: secret, STARTUP_DELAY_MS: '2000' },
});

const streamJson = (events: ExecuteEvent[]): Record<string, unknown>[] =>
  events.flatMap((e) =>
    e.type === 'output' ? [JSON.parse(e.content) as Record<string, unknown>] : [],
  );

const startedArgs = (events: ExecuteEvent[]): string[] => {
  const started = events.find((event) => event.type === 'started');
  return started?.type === 'started' ? [...started.data.args] : [];
};

describe('profiles: MCP servers and settings by name, through the real claude CLI', () => {
  let standIn: StandIn;
  let claude: PrivateClaudeEnv;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let configDir: string;

  beforeAll(async () => {
    standIn = await startStandIn();
    claude = privateClaudeEnv({ baseUrl: standIn.url });
    configDir = mkdtempSync(join(tmpdir(), 'claudebox-profiles-'));
    const profilesFile = join(configDir, 'profiles.json');
    const profiles = {
      digest: {
        mcpServers: { vault: server('${env:PROFILE_TEST_SECRET}') },
        // The job allows only Read: the tool is allowed by the profile's settings.
        settings: { permissions: { allow: ['mcp__vault__secret_digest'] } },
      },
      unset: { mcpServers: { vault: server('${env:PROFILE_TEST_UNSET}') } },
      'trusts-the-repository': { settingSources: ['project'] },
    };
    writeFileSync(profilesFile, JSON.stringify({ profiles }));
    const queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: findRealClaude(),
      env: { ...claude.env, PROFILES_FILE: profilesFile, PROFILE_TEST_SECRET: SECRET },
    });
    client = createClient({ url: redisUrl, queueName });
    // A repository that brings an MCP server and a hook of its own.
    const repo = join(worker.workDir, 'repo');
    mkdirSync(join(repo, '.claude'), { recursive: true });
    writeFileSync(
      join(repo, '.mcp.json'),
      JSON.stringify({ mcpServers: { repo: server('from-the-repository') } }),
    );
    const hook = { type: 'command', command: `touch ${join(repo, 'hook-ran')}` };
    writeFileSync(
      join(repo, '.claude', 'settings.json'),
      JSON.stringify({ hooks: { UserPromptSubmit: [{ hooks: [hook] }] } }),
    );
  });

  afterAll(async () => {
    await worker.worker.shutdown(0);
    await client.close();
    await standIn.close();
    rmSync(configDir, { recursive: true, force: true });
    rmSync(serverDir, { recursive: true, force: true });
    expect(await claude.dispose()).toEqual([]);
  });

  async function run(
    request: Parameters<ClaudeboxClient['enqueue']>[0],
  ): Promise<{ result: ExecuteResult; events: ExecuteEvent[] }> {
    const jobId = await client.enqueue(request);
    const result = await client.result(jobId, { timeoutMs: 60_000 });
    const events = await collectEvents(client.events(jobId));
    return { result, events };
  }

  it('gives the run its profile’s MCP server with the secret from the worker’s environment, which no event, argument or log shows', async () => {
    const { result, events } = await run({
      prompt:
        'Check the vault.\nstand-in: tool mcp__vault__secret_digest {"label":"vault says"}\nstand-in: say {{result}}',
      workingDir: 'repo',
      allowedTools: ['Read'],
      profile: 'digest',
    });

    expect(result).toMatchObject({ success: true, finalOutput: `vault says ${DIGEST}` });
    const init = streamJson(events)[0];
    expect(init?.tools).toContain('mcp__vault__secret_digest');
    const toolResult = streamJson(events).find((line) => line.type === 'user');
    expect(JSON.stringify(toolResult)).toContain(DIGEST);

    const args = startedArgs(events);
    expect(args).toContain('--strict-mcp-config');
    expect(args).toContain('--setting-sources=');
    const mcpConfig = args.find((arg) => arg.startsWith('--mcp-config='));
    expect(mcpConfig).toBeDefined();
    expect(args.some((arg) => arg.startsWith('--settings='))).toBe(true);
    // The files went with the run's home.
    expect(existsSync(mcpConfig?.slice('--mcp-config='.length) ?? '')).toBe(false);

    expect(JSON.stringify(events)).not.toContain(SECRET);
    expect(JSON.stringify(worker.logs)).not.toContain(SECRET);
  });

  it('loads no MCP server and no hook of the repository, with a profile or without', async () => {
    for (const profile of ['digest', undefined]) {
      const { result, events } = await run({
        prompt:
          'Ask the repository.\nstand-in: tool mcp__repo__secret_digest {"label":"repo says"}\nstand-in: say {{result}}',
        workingDir: 'repo',
        allowedTools: ['Read', 'mcp__repo__secret_digest'],
        ...(profile === undefined ? {} : { profile }),
      });

      const init = streamJson(events)[0];
      expect(init?.tools).not.toContain('mcp__repo__secret_digest');
      const servers = profile === undefined ? [] : [expect.objectContaining({ name: 'vault' })];
      expect(init?.mcp_servers).toEqual(servers);
      expect(result.success).toBe(true);
      expect(result.finalOutput).not.toContain('sha256:');
      expect(existsSync(join(worker.workDir, 'repo', 'hook-ran'))).toBe(false);
    }
  });

  it('runs the repository’s own hooks only when the profile allows project settings, and its .mcp.json never', async () => {
    const hookRan = join(worker.workDir, 'repo', 'hook-ran');
    const { result, events } = await run({
      prompt: 'hi',
      workingDir: 'repo',
      profile: 'trusts-the-repository',
    });

    expect(result.success).toBe(true);
    expect(startedArgs(events)).toContain('--setting-sources=project');
    expect(existsSync(hookRan)).toBe(true);
    expect(streamJson(events)[0]?.mcp_servers).toEqual([]);
    rmSync(hookRan);
  });

  it('fails a job whose profile needs a variable the worker lacks as worker configuration, naming the variable, before the CLI starts', async () => {
    const { result, events } = await run({ prompt: 'hi', profile: 'unset' });

    expect(result).toMatchObject({ success: false, failure: 'worker-error', exitCode: null });
    expect(result.error).toBe(
      'worker configuration: profile "unset" needs PROFILE_TEST_UNSET in the worker\'s environment (PROFILES_FILE), which is not set',
    );
    expect(events.some((event) => event.type === 'started')).toBe(false);
  });

  it('refuses a profile the worker does not have as an invalid request naming the known ones', async () => {
    const { result } = await run({ prompt: 'hi', profile: 'github' });

    expect(result).toMatchObject({ success: false, failure: 'invalid-request' });
    expect(result.error).toBe(
      'invalid job data: profile: "github" is not a profile of this worker (known: digest, trusts-the-repository, unset)',
    );
  });
});
