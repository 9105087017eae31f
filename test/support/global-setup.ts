import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { eventually, pidsWithEnv } from './processes.js';
import { startRedisServer, type RedisServer } from './redis-server.js';
import { removeScratchOfTestRun, TEST_RUN_VARIABLE } from './test-run.js';
import { loadConfig } from '../../src/config/config.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/**
 * Every process the tests start inherits this variable (claude runs aside: they get an
 * allow-listed environment, and each test checks its runs through their job id instead).
 */
const SESSION = TEST_RUN_VARIABLE;
const session = randomUUID();
let server: RedisServer | undefined;
let temp: string | undefined;

/**
 * Builds dist/ (tests run the worker process as `npm start` does), then starts one private
 * redis-server for the whole run, on a free port: never the developer's 6379.
 */
export async function setup(project: TestProject): Promise<void> {
  requireTools();
  process.env[SESSION] = session;
  useTempDirOfOwn();
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  server = await startRedisServer();
  project.provide('redisUrl', server.url);
}

/**
 * What the integration tests run for real: a missing one would show up as dozens of puzzling
 * failures (runs without namespaces, say), so the run stops at once and names the package.
 */
const TOOLS: Record<string, string> = {
  'redis-server': 'redis-server',
  tmux: 'tmux',
  // Workspaces are clones of repositories the tests make.
  git: 'git',
  setpriv: 'util-linux',
  // A run's limits are set by a shell: both ways shells name the process limit are tested.
  dash: 'dash',
  bash: 'bash',
  bwrap: 'bubblewrap',
  // A file system the tests freeze, for a run's process that no kill can end yet.
  'mkfs.ext4': 'e2fsprogs',
  fsfreeze: 'util-linux',
  // The live page is tested in a real browser.
  chromium: 'chromium',
  // A process whose first thread exits while it lives on (test/fixtures/bin/leaderless.py).
  python3: 'python3',
};

function requireTools(): void {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  const missing = Object.keys(TOOLS).filter(
    (tool) => !dirs.some((dir) => existsSync(join(dir, tool))),
  );
  if (missing.length === 0) return;
  const packages = missing.map((tool) => TOOLS[tool]).join(' ');
  throw new Error(
    `the integration tests need ${missing.join(', ')} on PATH: apt-get install -y ${packages}`,
  );
}

/**
 * Every temporary directory of the run (the tests', the workers' and the runs' own) goes into
 * one, removed at the end: hundreds of workers' homes and work directories would otherwise pile
 * up in /tmp run after run. It is open to all, as /tmp is, for the runs' uids.
 */
function useTempDirOfOwn(): void {
  temp = mkdtempSync(join(tmpdir(), 'claudebox-test-'));
  chmodSync(temp, 0o1777);
  process.env.TMPDIR = temp;
  // tmux, which the terminal tests drive, keeps its socket's directory there too.
  process.env.TMUX_TMPDIR = temp;
}

/**
 * Stops the run's Redis, then fails the run if any process a test started is still alive;
 * removes the run's temporary directory either way.
 */
export async function teardown(): Promise<void> {
  try {
    await server?.close();
    await failOnLeftovers();
    removeScratchOfTestRun(join(loadConfig({}).RUN_ROOT, 'scratch'));
  } finally {
    // A leftover killed just before may still be going: its files may come and go a moment.
    if (temp !== undefined) rmSync(temp, { recursive: true, force: true, maxRetries: 5 });
  }
}

async function failOnLeftovers(): Promise<void> {
  const leftovers = (): number[] =>
    pidsWithEnv(SESSION, session).filter((pid) => !commandLine(pid).includes('vitest'));
  if (await eventually(() => leftovers().length === 0, 5000)) return;
  const found = leftovers().map((pid) => `${pid}: ${commandLine(pid)}`);
  for (const pid of leftovers()) process.kill(pid, 'SIGKILL');
  throw new Error(
    `processes started by the tests outlived them (now killed):\n${found.join('\n')}`,
  );
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}
