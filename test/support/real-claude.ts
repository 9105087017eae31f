import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, pidsWithEnv } from './processes.js';

/**
 * Helpers for tests that run the REAL claude CLI (the installed @anthropic-ai/claude-code)
 * against a local stand-in for the Messages API: no API key, no internet, no developer's
 * settings or sessions (a private HOME), and a marker in the environment so a test can tell
 * whether any process of its runs outlived it.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const INSTALL_HINT =
  'The real claude CLI is not installed: run `npm ci` in the project root to install ' +
  '@anthropic-ai/claude-code (it brings the native binary for this platform).';

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The installed CLI: node_modules/.bin/claude, else the native binary of the platform package.
 * Never the `claude` on PATH: the tests pin the version in package-lock.json.
 */
export function findRealClaude(): string {
  const musl = process.platform === 'linux' && isMusl() ? '-musl' : '';
  const candidates = [
    join(ROOT, 'node_modules/.bin/claude'),
    join(
      ROOT,
      `node_modules/@anthropic-ai/claude-code-${process.platform}-${process.arch}${musl}/claude`,
    ),
  ];
  const found = candidates.find(isExecutableFile);
  if (found === undefined) {
    throw new Error(`${INSTALL_HINT} Looked for: ${candidates.join(', ')}`);
  }
  return found;
}

function isMusl(): boolean {
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime === undefined;
}

/** Every process started with a PrivateClaudeEnv carries this variable (tools inherit it). */
export const REAL_CLAUDE_MARKER = 'CLAUDEBOX_TEST_CLAUDE_RUN';

export interface PrivateClaudeEnv {
  /** The whole environment for the CLI: nothing else of the test process's leaks in. */
  readonly env: Record<string, string>;
  readonly home: string;
  /** CLAUDE_CONFIG_DIR, inside home; sessions live in its `projects/`. */
  readonly configDir: string;
  readonly marker: { readonly name: string; readonly value: string };
  /** Live processes that carry this environment's marker. */
  leftovers(): number[];
  /**
   * Waits a little for processes of the runs to end, SIGKILLs what is still there, removes
   * home, and returns the pids it had to kill (a test should expect none).
   */
  dispose(): Promise<number[]>;
}

export interface PrivateClaudeEnvOptions {
  /** The stand-in's URL (ANTHROPIC_BASE_URL). */
  readonly baseUrl: string;
  readonly apiKey?: string;
  /** More variables, e.g. a marker of the test's own. */
  readonly extra?: Readonly<Record<string, string>>;
}

export function privateClaudeEnv(options: PrivateClaudeEnvOptions): PrivateClaudeEnv {
  const home = mkdtempSync(join(tmpdir(), 'claudebox-claude-home-'));
  const configDir = join(home, '.claude');
  mkdirSync(configDir);
  const marker = { name: REAL_CLAUDE_MARKER, value: randomUUID() };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    // The CLI's own temporary files (its shell's working-directory file) go with the home.
    TMPDIR: home,
    CLAUDE_CONFIG_DIR: configDir,
    ANTHROPIC_BASE_URL: options.baseUrl,
    ANTHROPIC_API_KEY: options.apiKey ?? 'stand-in-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    // 401s and 5xx are otherwise retried for half a minute and more.
    CLAUDE_CODE_MAX_RETRIES: '0',
    [marker.name]: marker.value,
    ...options.extra,
  };
  const leftovers = (): number[] => pidsWithEnv(marker.name, marker.value);
  return {
    env,
    home,
    configDir,
    marker,
    leftovers,
    dispose: async () => {
      await eventually(() => leftovers().length === 0, 3_000);
      const killed = leftovers();
      for (const pid of killed) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      rmSync(home, { recursive: true, force: true });
      return killed;
    },
  };
}

export interface RealClaudeRunOptions {
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Written to stdin, which is then closed. */
  readonly prompt: string;
  /** After `-p --verbose --output-format stream-json`. */
  readonly args?: readonly string[];
  /** The CLI is SIGKILLed after this long (default 60 s); `timedOut` then says so. */
  readonly timeoutMs?: number;
  /** Called once the CLI is started, e.g. to signal it later. */
  readonly onSpawn?: (pid: number) => void;
  /** Called for each stdout line as it comes. */
  readonly onLine?: (line: Record<string, unknown>) => void;
}

export interface RealClaudeRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Every stdout line, parsed (a line that is not JSON is kept as `{ unparsed: line }`). */
  readonly lines: readonly Record<string, unknown>[];
  /** The last `type: "result"` line, if any. */
  readonly result: ResultLine | undefined;
  readonly sessionId: string | undefined;
}

/** The fields of the CLI's final line that tests look at (observed with 2.1.330). */
export interface ResultLine {
  readonly type: 'result';
  readonly subtype: string;
  readonly is_error: boolean;
  /** Absent on the error_* subtypes. */
  readonly result?: string;
  readonly errors?: readonly string[];
  readonly num_turns?: number;
  readonly total_cost_usd?: number;
  readonly api_error_status?: number | null;
  readonly terminal_reason?: string;
  readonly permission_denials?: readonly {
    readonly tool_name: string;
    readonly tool_use_id: string;
    readonly tool_input: Readonly<Record<string, unknown>>;
  }[];
  readonly session_id: string;
  readonly [field: string]: unknown;
}

export const STREAM_JSON_ARGS = ['-p', '--verbose', '--output-format', 'stream-json'] as const;

/** Runs the CLI to its end (or the timeout) with the prompt on stdin. */
export async function runRealClaude(options: RealClaudeRunOptions): Promise<RealClaudeRun> {
  const bin = findRealClaude();
  const started = Date.now();
  const child = spawn(bin, [...STREAM_JSON_ARGS, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  let timedOut = false;

  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve([code, signal]);
    });
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 60_000);

  const take = (line: string): void => {
    if (line.trim() === '') return;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      parsed = { unparsed: line };
    }
    lines.push(parsed);
    options.onLine?.(parsed);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    stdout += chunk;
    const parts = (pending + chunk).split('\n');
    pending = parts.pop() ?? '';
    parts.forEach(take);
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => (stderr += chunk));
  // The CLI may exit before reading stdin (a bad flag); that is its answer, not ours to fail on.
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.prompt);

  try {
    const [exitCode, signal] = await closed;
    take(pending);
    const result = lines.filter((line) => line.type === 'result').at(-1) as ResultLine | undefined;
    const sessionId = lines.find((line) => typeof line.session_id === 'string')?.session_id;
    return {
      exitCode,
      signal,
      timedOut,
      durationMs: Date.now() - started,
      stdout,
      stderr,
      lines,
      result,
      sessionId: typeof sessionId === 'string' ? sessionId : undefined,
    };
  } finally {
    clearTimeout(timer);
  }
}
