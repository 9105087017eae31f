import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

const AUTHOR = {
  GIT_AUTHOR_NAME: 'claudebox',
  GIT_AUTHOR_EMAIL: 'claudebox@localhost',
  GIT_COMMITTER_NAME: 'claudebox',
  GIT_COMMITTER_EMAIL: 'claudebox@localhost',
};

/**
 * A new git repository at `path` holding `files` (relative path, text) in one commit on
 * branch main: a workspace source for the demo and the benchmarks. Returns `path`.
 */
export async function makeRepository(
  path: string,
  files: Iterable<readonly [string, string]>,
  message: string,
): Promise<string> {
  mkdirSync(path);
  for (const [name, text] of files) {
    const file = join(path, name);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
  const git = (...args: string[]) => execa('git', args, { cwd: path, env: AUTHOR });
  await git('init', '--quiet', '--initial-branch=main');
  await git('add', '-A');
  await git('commit', '--quiet', '-m', message);
  return path;
}
