import { execa } from 'execa';

/** A git command that failed: its message is git's own error, in one line. */
export class GitError extends Error {
  override readonly name = 'GitError';
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
}

/** Runs git, returning its stdout as bytes; a GitError with git's last words when it fails. */
export async function git(args: readonly string[], options: GitOptions = {}): Promise<Buffer> {
  const where = [
    ...(options.gitDir === undefined ? [] : [`--git-dir=${options.gitDir}`]),
    ...(options.workTree === undefined ? [] : [`--work-tree=${options.workTree}`]),
  ];
  const result = await execa('git', [...SAFE, ...where, ...args], {
    reject: false,
    encoding: 'buffer',
    stripFinalNewline: false,
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
  if (result.exitCode === 0) return Buffer.from(result.stdout);
  const said = Buffer.from(result.stderr).toString('utf8').trim().split('\n');
  const line = said.filter((text) => /fatal|error/i.test(text)).at(-1) ?? said.at(-1) ?? '';
  throw new GitError(
    `git ${args[0] ?? ''} failed: ${line.replace(/\s+/g, ' ').trim() || `exit code ${result.exitCode ?? 'none'}`}`,
  );
}

/** git's output as text, without its final newline. */
export async function gitText(args: readonly string[], options: GitOptions = {}): Promise<string> {
  return (await git(args, options)).toString('utf8').trimEnd();
}
