import { execa } from 'execa';

/** A git command that failed: its message is git's own error, in one line. */
export class GitError extends Error {
  override readonly name = 'GitError';

  constructor(
    message: string,
    /**
     * A clone or fetch that did not reach its source (the network, the server's 5xx, a
     * timeout): unlike a refusal (no such repository, no access), it may work a while later.
     */
    readonly unreachable = false,
  ) {
    super(message);
  }
}

/**
 * What git (and curl and ssh under it) print where a source refused: checked first, as git
 * follows an HTTP 403 with the same "RPC failed" and "remote end hung up" as a cut connection.
 * 408 (timeout) and 429 (too many requests) are not refusals.
 */
const REFUSED =
  /returned error: 4(?!08|29)\d\d|HTTP 4(?!08|29)\d\d|authentication failed|could not read username|permission denied|host key verification failed|repository .*not found|does not appear to be a git repository/i;
/** What git (and curl and ssh under it) print where a source could not be reached. */
const UNREACHABLE =
  /could not resolve host|temporary failure in name resolution|failed to connect|connection (refused|timed out|reset)|operation timed out|network is unreachable|no route to host|too slow|remote end hung up unexpectedly|early eof|rpc failed|returned error: 5\d\d/i;

/** Whether what a failed clone or fetch printed says its source could not be reached. */
export function unreachable(printed: string): boolean {
  return !REFUSED.test(printed) && UNREACHABLE.test(printed);
}

/**
 * Settings every git command of the worker runs with. The worker is root and may read
 * directories a run owned: nothing a run wrote may make it run a program (hooks, fsmonitor,
 * a pager), and ownership checks (safe.directory) would only refuse those directories.
 */
const SAFE = [
  '-c',
  'safe.directory=*',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'protocol.file.allow=always',
  '--no-pager',
];

export interface GitOptions {
  /** `--git-dir`: never found by looking at the working tree, which a run may have written. */
  readonly gitDir?: string;
  readonly workTree?: string;
  /** Run in this directory (for clone). */
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: Buffer | string;
  /** Past it git is stopped: a run can leave what git waits on for ever (a FIFO as .gitignore). */
  readonly timeoutMs?: number;
  /** A clone or fetch from a source: its GitError says whether the source could be reached. */
  readonly remote?: boolean;
  /** Stops git once it aborts: the job it works for is stopping (a shutdown, a cancel). */
  readonly signal?: AbortSignal | undefined;
  /** Exit codes that mean it worked (default: 0 alone). */
  readonly exitCodes?: readonly number[];
}

/** Runs git, returning its stdout as bytes; a GitError with git's last words when it fails. */
export async function git(args: readonly string[], options: GitOptions = {}): Promise<Buffer> {
  const subprocess = start(args, options, true);
  const guard = guardGroup(subprocess, options);
  const result = await subprocess.finally(guard.done);
  const { stderr, exitCode } = result;
  if (exitCode !== undefined && (options.exitCodes ?? [0]).includes(exitCode)) {
    return Buffer.from(result.stdout);
  }
  const timedOut = guard.timedOut();
  throw failure(args, { stderr, exitCode, timedOut, stopped: options.signal?.aborted }, options);
}

/** How long git's process group has to end on SIGTERM before it is sent SIGKILL. */
const KILL_GRACE_MS = 1000;

/**
 * Kills git's process group (start makes it one) once `signal` aborts or `timeoutMs` is up. The
 * whole group: a process git started (a clone's remote helper, a command a repository names)
 * can outlive git, holding the pipes whose end the worker waits for.
 */
function guardGroup(
  subprocess: ReturnType<typeof execa>,
  { signal, timeoutMs }: Pick<GitOptions, 'signal' | 'timeoutMs'>,
): { readonly done: () => void; readonly timedOut: () => boolean } {
  let timedOut = false;
  const signalGroup = (name: NodeJS.Signals): void => {
    try {
      if (subprocess.pid !== undefined) process.kill(-subprocess.pid, name);
    } catch {
      // Gone already.
    }
  };
  // SIGTERM first: git removes the lock files it holds (the index's) as it goes.
  const kill = (): void => {
    signalGroup('SIGTERM');
    setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS).unref();
  };
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          kill();
        }, timeoutMs);
  if (signal?.aborted === true) kill();
  signal?.addEventListener('abort', kill, { once: true });
  return {
    done: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', kill);
    },
    timedOut: () => timedOut,
  };
}

/**
 * Runs git for output that may be larger than the worker should hold (a diff of whatever a run
 * wrote): counts all of it, keeps it only when it is at most `maxBytes`.
 */
export async function gitCapped(
  args: readonly string[],
  options: GitOptions,
  maxBytes: number,
): Promise<{ readonly bytes: number; readonly output: Buffer | null }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  await gitEach(args, options, (chunk) => {
    bytes += chunk.length;
    if (bytes <= maxBytes) chunks.push(chunk);
    else chunks.length = 0;
  });
  return { bytes, output: bytes <= maxBytes ? Buffer.concat(chunks) : null };
}

/** Runs git, handing each piece of its stdout to `each` as it comes, none of it kept here. */
export async function gitEach(
  args: readonly string[],
  options: GitOptions,
  each: (chunk: Buffer) => void,
): Promise<void> {
  const subprocess = start(args, options, false);
  const guard = guardGroup(subprocess, options);
  const result = await (async () => {
    for await (const chunk of subprocess.stdout as AsyncIterable<Buffer>) each(chunk);
    return subprocess;
  })().finally(guard.done);
  if (result.exitCode !== 0) {
    const { stderr, exitCode } = result;
    throw failure(args, { stderr, exitCode, timedOut: guard.timedOut() }, options);
  }
}

function start(args: readonly string[], options: GitOptions, buffer: boolean) {
  const where = [
    ...(options.gitDir === undefined ? [] : [`--git-dir=${options.gitDir}`]),
    ...(options.workTree === undefined ? [] : [`--work-tree=${options.workTree}`]),
  ];
  return execa('git', [...SAFE, ...where, ...args], {
    reject: false,
    // A group of its own, which a stop or the time limit kills whole (see guardGroup).
    detached: true,
    encoding: 'buffer',
    stripFinalNewline: false,
    // stderr is read for the error message either way; stdout is streamed when not buffered.
    buffer: { stdout: buffer, stderr: true },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
    env: {
      ...options.env,
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'claudebox',
      GIT_AUTHOR_EMAIL: 'claudebox@localhost',
      GIT_COMMITTER_NAME: 'claudebox',
      GIT_COMMITTER_EMAIL: 'claudebox@localhost',
    },
  });
}

function failure(
  args: readonly string[],
  result: {
    readonly stderr: unknown;
    readonly exitCode?: number | undefined;
    readonly timedOut?: boolean;
    /** The job git worked for stopped it (see stoppable). */
    readonly stopped?: boolean | undefined;
  },
  { timeoutMs = 0, remote = false }: GitOptions,
): GitError {
  const command = commandOf(args);
  if (result.stopped === true)
    return new GitError(`git ${command} was stopped: its job is stopping`);
  if (result.timedOut === true) {
    const seconds = timeoutMs / 1000;
    return new GitError(`git ${command} did not finish within ${seconds} s: stopped`, remote);
  }
  const stderr = result.stderr instanceof Uint8Array ? Buffer.from(result.stderr) : '';
  const printed = stderr.toString('utf8');
  const said = printed.trim().split('\n');
  const line = said.filter((text) => /fatal|error/i.test(text)).at(-1) ?? said.at(-1) ?? '';
  return new GitError(
    `git ${command} failed: ${line.replace(/\s+/g, ' ').trim() || `exit code ${result.exitCode ?? 'none'}`}`,
    remote && unreachable(printed),
  );
}

/** git's output as text, without its final newline. */
export async function gitText(args: readonly string[], options: GitOptions = {}): Promise<string> {
  return (await git(args, options)).toString('utf8').trimEnd();
}

/** The git command among its arguments, past the `-c name=value` settings before it. */
function commandOf(args: readonly string[]): string {
  let index = 0;
  while (args[index] === '-c') index += 2;
  return args[index] ?? '';
}
