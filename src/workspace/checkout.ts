import { copyFile, cp, mkdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { git, gitCapped, gitEach, gitText, type GitOptions } from './git.js';
import { ChangeListing, GITLINK_MODE } from './listing.js';
import { removeHolder, writeHolder } from './holder.js';
import { removeTree } from '../common/remove-tree.js';

/** What a run changed in its checkout, against the commit it started from. */
export interface Change {
  readonly base: string;
  readonly changed: string[];
  readonly added: string[];
  readonly deleted: string[];
  /**
   * Paths of the change left out of the three lists, past WORKSPACE_PATCH_MAX_BYTES of them (the
   * patch, where it is kept, has them all).
   */
  readonly unlisted: number;
  /** `git diff --binary` against base, untracked files included (ignored ones not). */
  readonly patch: Buffer | null;
  /** The patch's size; over the cap it was asked with, `patch` is null and only this is known. */
  readonly patchBytes: number;
  /** With a branch asked for: the commit of the change on it. */
  readonly commit: string | null;
}

/**
 * The index's stat data is trusted only as far as whole-second mtime and size: handing the
 * checkout to the run's uid and back changes every file's owner and ctime, which would make git
 * read every file again on each look.
 */
const STAT = ['-c', 'core.checkStat=minimal', '-c', 'core.trustctime=false'];

/**
 * How long one git command of a look may take. The run owns the checkout: it can leave a FIFO
 * where git opens a file (`.gitignore`), and git would wait on it for ever, the attempt with it.
 */
export const LOOK_TIMEOUT_MS = 5 * 60 * 1000;

/** Runs a step of a look, or says (null) that it could not. */
export type Hold = <T>(step: () => Promise<T>) => Promise<T | null>;

/** One job's checkout of a cached clone: read by the worker with git settings of its own. */
export class Checkout {
  readonly dir: string;
  readonly base: string;
  private readonly cache: string;
  private readonly scratch: string;
  private readonly holder: string;
  private readonly keepFailedSeconds: number;
  /** One look at the checkout at a time: they share the scratch index. */
  private looking: Promise<unknown> = Promise.resolve();
  /** The repositories nested in the checkout that the last look added (see leaveAsAdded). */
  private nested: readonly string[] = [];

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
   * Keeps the checkout's index, made by git while the checkout was still the worker's alone, as
   * the worker's own: each later look then reads only the files whose size or mtime changed.
   */
  async adoptIndex(): Promise<void> {
    await rm(this.scratch, { recursive: true, force: true });
    await mkdir(join(this.scratch, 'objects'), { recursive: true, mode: 0o700 });
    const index = join(this.dir, '.git', 'index');
    await copyFile(index, join(this.scratch, 'index'));
    // With its own mtime: git re-reads a file changed within the second its index was written
    // (an earlier attempt's patch, applied just after the checkout) only when it can tell.
    const { atime, mtime } = await stat(index);
    await utimes(join(this.scratch, 'index'), atime, mtime);
    // The source's submodules, and those of an earlier attempt's patch: empty directories the
    // run can fill.
    const options = this.gitOptions(LOOK_TIMEOUT_MS);
    const staged = (await git(['ls-files', '--stage', '-z'], options)).toString('utf8');
    const nested = staged
      .split('\0')
      .filter((entry) => entry.startsWith(`${GITLINK_MODE} `))
      .map((entry) => entry.slice(entry.indexOf('\t') + 1));
    await leaveAsAdded(nested, options);
  }

  /** git reading the checkout through the cache, with the scratch index and object store. */
  private gitOptions(timeoutMs: number): GitOptions {
    return { ...this.treeOptions(timeoutMs), workTree: this.dir, cwd: this.dir };
  }

  /** git with the scratch index and object store, and no working tree to read. */
  private treeOptions(timeoutMs: number): GitOptions {
    return {
      gitDir: this.cache,
      cwd: this.scratch,
      timeoutMs,
      env: {
        GIT_INDEX_FILE: join(this.scratch, 'index'),
        GIT_OBJECT_DIRECTORY: join(this.scratch, 'objects'),
        GIT_ALTERNATE_OBJECT_DIRECTORIES: join(this.cache, 'objects'),
      },
    };
  }

  /**
   * The change in the checkout. Git reads it through the cache as its repository with the index
   * adopted at the start, never through the checkout's `.git`, which the run could have
   * rewritten. New contents go into a scratch object store; a commit on `branch`, when one is
   * asked for, is then copied into the cache with the objects it needs. A patch over
   * `maxPatchBytes` is counted, not kept.
   */
  change(options: {
    branch?: string | null;
    maxPatchBytes: number;
    /**
     * Runs git's reading of the working tree: while the run still goes on, with the run stopped,
     * as it owns the checkout and could swap a directory for a link between two of git's calls.
     * Null: it could not, and the look is given up.
     */
    hold?: Hold;
    /** How long each git command may take; LOOK_TIMEOUT_MS by default. */
    timeoutMs?: number;
  }): Promise<Change> {
    const hold = options.hold ?? ((step) => step());
    const timeoutMs = options.timeoutMs ?? LOOK_TIMEOUT_MS;
    const next = this.looking.then(() =>
      this.look(options.branch ?? null, options.maxPatchBytes, { hold, timeoutMs }),
    );
    this.looking = next.catch(() => undefined);
    return next;
  }

  private async look(
    branch: string | null,
    maxPatchBytes: number,
    { hold, timeoutMs }: { hold: Hold; timeoutMs: number },
  ): Promise<Change> {
    const options = this.gitOptions(timeoutMs);
    await leaveAsAdded(this.nested, options);
    // A repository the run made inside the checkout without a commit (`git init` in a new
    // folder), or a FIFO where a file was, cannot be added: the rest of the change still is,
    // and git says so with exit code 1.
    const addAll = [...STAT, 'add', '--all', '--ignore-errors', '--', '.'];
    const added = await hold(() => git(addAll, { ...options, exitCodes: [0, 1] }));
    if (added === null) {
      throw new Error("the run's processes could not all be stopped for a look at its checkout");
    }
    // From here on git compares trees, with no working tree: the run goes on meanwhile, and a
    // diff of the index would read a file of the working tree whose size and mtime match the
    // index's instead of its blob, through whatever link the run put on its path since.
    const trees = this.treeOptions(timeoutMs);
    const tree = await gitText(['write-tree'], trees);
    const diff = ['diff-tree', '-r', '--no-renames', '--no-ext-diff', '--no-textconv'];
    const listing = new ChangeListing(maxPatchBytes);
    await gitEach([...diff, '--raw', '-z', this.base, tree], trees, (chunk) => listing.push(chunk));
    this.nested = listing.nested;
    const patch = await gitCapped([...diff, '--binary', this.base, tree], trees, maxPatchBytes);
    const commit = branch === null ? null : await this.commit(branch, tree, trees);
    return {
      base: this.base,
      changed: listing.changed,
      added: listing.added,
      deleted: listing.deleted,
      unlisted: listing.unlisted,
      patch: patch.output,
      patchBytes: patch.bytes,
      commit,
    };
  }

  /**
   * The attempt is over: the checkout goes, or, after a failed attempt with
   * WORKSPACE_KEEP_FAILED_SECONDS set, stays that long for debugging (a sweep removes it then).
   */
  async release(failed: boolean): Promise<void> {
    await this.looking;
    await rm(this.scratch, { recursive: true, force: true });
    if (failed && this.keepFailedSeconds > 0) {
      const keepUntil = Date.now() + this.keepFailedSeconds * 1000;
      await writeHolder(this.holder, { keepUntil, cache: this.cache });
      return;
    }
    // What the run wrote may be deeper than a path can name.
    await removeTree(this.dir);
    // Last: until the checkout is gone, no sweep may take it for another's.
    await removeHolder(this.holder);
  }

  /**
   * The attempt is over, but a process of its run may still be in the checkout: it is left to
   * the sweep, which removes it once no run can be in it any more (see WorkspaceSettings).
   */
  async leave(): Promise<void> {
    await this.looking;
    await rm(this.scratch, { recursive: true, force: true });
    await writeHolder(this.holder, { keepUntil: 0, cache: this.cache });
  }

  private async commit(branch: string, tree: string, options: GitOptions): Promise<string> {
    const message = `${branch}\n\nThe change of claudebox job ${branch.split('/').at(-1) ?? ''}.`;
    const commit = await gitText(['commit-tree', tree, '-p', this.base, '-m', message], options);
    // Loose objects are files named by their hash: copying them over is all a store needs.
    await cp(join(this.scratch, 'objects'), join(this.cache, 'objects'), {
      recursive: true,
      force: false,
    });
    await git(['update-ref', `refs/heads/${branch}`, commit], { gitDir: this.cache });
    return commit;
  }
}

/**
 * Marks each of `nested`, repositories nested in the checkout that the index holds (the run's own
 * `git init` with a commit, or a submodule of the source it filled), skip-worktree: `git add`
 * then keeps it as it was added. Else git checks it for changes with a `git status` of its own
 * run inside it, as root, which reads that repository's config and attributes: the run's, which
 * can name a program (a clean filter) for it to run. Touches only the index, so needs no hold.
 */
async function leaveAsAdded(nested: readonly string[], options: GitOptions): Promise<void> {
  if (nested.length === 0) return;
  await git(['update-index', '--skip-worktree', '-z', '--stdin'], {
    ...options,
    input: `${nested.join('\0')}\0`,
  });
}
