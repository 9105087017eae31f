import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** git in `cwd` as a test's own user would run it, with a fixed author; its output trimmed. */
export const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-c', 'safe.directory=*', ...args], {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim();

/** A repository at `<root>/repo` with one commit of a README on `main`; its path. */
export function oneCommitRepository(root: string): string {
  const path = join(root, 'repo');
  mkdirSync(path);
  git(path, 'init', '--quiet', '--initial-branch=main');
  writeFileSync(join(path, 'README.md'), 'repo\n');
  git(path, 'add', '-A');
  git(path, 'commit', '--quiet', '-m', 'first');
  return path;
}
