import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { CAP_SYS_RESOURCE, hasCapability, pidsWithCommandLine } from '../support/processes.js';

const root = new URL('../../', import.meta.url).pathname;

/** `npm run demo` as a newcomer runs it: tsx on the tools' entry, nothing in the environment but PATH. */
function runDemo(
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(join(root, 'node_modules/.bin/tsx'), ['tools/main.ts', 'demo'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: mkdtempSync(join(tmpdir(), 'claudebox-newcomer-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('the demo', () => {
  it('runs a job from enqueue to result with its own Redis and a scripted model, then stops it all', async () => {
    const { code, stdout, stderr } = await runDemo();

    // Nothing, but on a host where the worker lacks CAP_SYS_RESOURCE, its warning that a run
    // can take back its OOM score adjustment.
    const warnings = hasCapability(process.pid, CAP_SYS_RESOURCE)
      ? []
      : [expect.stringContaining('the worker lacks CAP_SYS_RESOURCE')];
    expect(stderr.split('\n').filter(Boolean)).toEqual(warnings);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Redis {4}a private redis-server on redis:\/\/127\.0\.0\.1:\d+/);
    expect(stdout).toContain('scripted stand-in for the Anthropic API');
    // The tests run as root: the demo's run is isolated.
    expect(stdout).toContain(
      'Runs     isolated: a uid of their own and pid, ipc, mount namespaces',
    );
    expect(stdout).toMatch(/▶ job 1 attempt 1 started \(pid \d+/);
    expect(stdout).toContain('→ Bash: node --version | tee node-version.txt');
    expect(stdout).toContain(`← ${process.version}`);
    expect(stdout).toContain(
      `This machine runs Node.js ${process.version}; I wrote that to node-version.txt.`,
    );
    expect(stdout).toMatch(/✓ completed in/);
    expect(stdout).toContain('"success": true');
    // The job worked in a checkout of a repository, and its change is shown as a patch.
    expect(stdout).toMatch(/It works in a checkout of its own of \/\S+\/project at main\./);
    expect(stdout).toContain('What the job changed, as `claudebox patch 1` prints it');
    expect(stdout).toContain('  | +++ b/node-version.txt');
    expect(stdout).toContain(`  | +${process.version}`);
    expect(stdout).toContain('"added": [\n      "node-version.txt"\n    ]');
    // Its private Redis is gone (the claude run and the worker went with the demo's process).
    const port = /redis-server on redis:\/\/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1];
    expect(port).toBeDefined();
    expect(pidsWithCommandLine(`127.0.0.1:${port ?? ''}`)).toEqual([]);
  });

  it('uses the Redis in REDIS_URL when set, and takes its queue away afterwards', async () => {
    const redisUrl = inject('redisUrl');
    const { code, stdout } = await runDemo({ REDIS_URL: redisUrl });

    expect(code).toBe(0);
    expect(stdout).toContain(`Redis    ${redisUrl} (from REDIS_URL)`);
    const queueName = /on queue (claudebox-demo-[0-9a-f]+)/.exec(stdout)?.[1];
    expect(queueName).toBeDefined();
    const redis = new Redis(redisUrl);
    try {
      expect(await redis.keys(`bull:${queueName ?? ''}:*`)).toEqual([]);
    } finally {
      await redis.quit();
    }
  });
});
