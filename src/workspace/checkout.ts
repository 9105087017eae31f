import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { git, gitText, type GitOptions } from './git.js';
import { removeHolder, writeHolder } from './holder.js';

/** What a run changed in its checkout, against the commit it started from. */
export interface Change {
  readonly base: string;
  readonly changed: string[];
  readonly added: string[];
  readonly deleted: string[];
  /** `git diff --binary` against base, untracked files included (ignored ones not). */
  readonly patch: Buffer;
  /** With a branch asked for: the commit of the change on it. */
  readonly commit: string | null;
}

/** One job's checkout of a cached clone: read by the worker with git settings of its own. */
export class Checkout {
  readonly dir: string;
  readonly base: string;
  private readonly cache: string;
  private readonly scratch: string;
  private readonly holder: string;
  private readonly keepFailedSeconds: number;

  constructor(place: {
    dir: string;
    base: string;
    cache: string;
    scratch: string;
    holder: string;
    keepFailedSeconds: number;
  }) {
    this.dir = place.dir;
    this.base = place.base;
    this.cache = place.cache;
    this.scratch = place.scratch;
    this.holder = place.holder;
    this.keepFailedSeconds = place.keepFailedSeconds;
  }

  /**
   * The change in the checkout. Git reads it through the cache as its repository with an index
   * of its own, never through the checkout's `.git`, which the run could have rewritten. The
   * files' contents go into a scratch object store, unless `branch` asks for a commit in the
   * cache, where the commit then lives.
   */
  async change(branch: string | null = null): Promise<Change> {
    await rm(this.scratch, { recursive: true, force: true });
    await mkdir(join(this.scratch, 'objects'), { recursive: true, mode: 0o700 });
    const options: GitOptions = {
      gitDir: this.cache,
      workTree: this.dir,
      cwd: this.dir,
      env: {
        GIT_INDEX_FILE: join(this.scratch, 'index'),
        ...(branch === null
          ? {
              GIT_OBJECT_DIRECTORY: join(this.scratch, 'objects'),
              GIT_ALTERNATE_OBJECT_DIRECTORIES: join(this.cache, 'objects'),
            }
          : {}),
      },
    };
    try {
      await git(['read-tree', this.base], options);
      await git(['add', '--all', '--', '.'], options);
      const diff = ['diff', '--cached', '--no-renames', '--no-ext-diff', '--no-textconv'];
      const listed = await git([...diff, '--name-status', '-z', this.base], options);
      const patch = await git([...diff, '--binary', this.base], options);
      const commit = branch === null ? null : await this.commit(branch, options);
      return { base: this.base, ...filesOf(listed), patch, commit };
    } finally {
      await rm(this.scratch, { recursive: true, force: true });
    }
  }

  /**
   * The attempt is over: the checkout goes, or, after a failed attempt with
   * WORKSPACE_KEEP_FAILED_SECONDS set, stays that long for debugging (a sweep removes it then).
   */
  async release(failed: boolean): Promise<void> {
    await rm(this.scratch, { recursive: true, force: true });
    if (failed && this.keepFailedSeconds > 0) {
      const keepUntil = Date.now() + this.keepFailedSeconds * 1000;
      await writeHolder(this.holder, { keepUntil, cache: this.cache });
      return;
    }
    await rm(this.dir, { recursive: true, force: true });
    // Last: until the checkout is gone, no sweep may take it for another's.
    await removeHolder(this.holder);
  }

  private async commit(branch: string, options: GitOptions): Promise<string> {
    const tree = await gitText(['write-tree'], options);
    const message = `${branch}\n\nThe change of claudebox job ${branch.split('/').at(-1) ?? ''}.`;
    const commit = await gitText(['commit-tree', tree, '-p', this.base, '-m', message], options);
    await git(['update-ref', `refs/heads/${branch}`, commit], options);
    return commit;
  }
}

/** Paths by status from `git diff --name-status -z` (status and path alternate, NUL-separated). */
function filesOf(listed: Buffer): { changed: string[]; added: string[]; deleted: string[] } {
  const parts = listed.toString('utf8').split('\0');
  const files = { changed: [] as string[], added: [] as string[], deleted: [] as string[] };
  for (let index = 0; index + 1 < parts.length; index += 2) {
    const status = parts[index] ?? '';
    const path = parts[index + 1] ?? '';
    if (status === 'A') files.added.push(path);
    else if (status === 'D') files.deleted.push(path);
    else files.changed.push(path);
  }
  return files;
}
