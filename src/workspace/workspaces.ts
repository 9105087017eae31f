import { createHash } from 'node:crypto';
import { chmod, mkdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkspaceRequest } from '../contract/index.js';
import { git, GitError, gitText, type GitOptions } from './git.js';
import { withLock } from './lock.js';
import { Checkout } from './checkout.js';
import { removeHolder, thisProcess, writeHolder } from './holder.js';
import {
  checkoutLock,
  sweep,
  type CacheLimits,
  type DiskUse,
  type WorkspaceDirs,
} from './sweep.js';
import { removeTree } from '../common/remove-tree.js';

export interface WorkspaceSettings {
  /** WORKSPACE_DIR: cached clones in `cache/`, checkouts in `checkouts/`. */
  readonly dir: string;
  /** Told of each clone made (for /metrics). */
  readonly onClone?: () => void;
  /** WORKSPACE_KEEP_FAILED_SECONDS: how long a failed attempt's checkout stays. */
  readonly keepFailedSeconds?: number;
  /** WORKSPACE_STALL_SECONDS (60 by default): when a clone or fetch is given up. */
  readonly stallSeconds?: number;
  readonly cacheLimits?: CacheLimits;
  /**
   * Whether a run may still be in `dir` although its attempt is over (a run whose uid could not
   * be cleared yet): the sweep leaves such a checkout for a later sweep, as nothing a run could
   * still change is removed as root.
   */
  readonly runMayBeIn?: (dir: string) => Promise<boolean>;
}

const FULL_COMMIT = /^[0-9a-f]{40}$/;
const DEFAULT_STALL_SECONDS = 60;

const shortHash = (text: string): string =>
  createHash('sha256').update(text).digest('hex').slice(0, 32);

/**
 * The worker's workspaces: one cached bare clone per source, fetched under a lock so concurrent
 * jobs never clone or fetch it twice at once, and a checkout of it per job.
 */
export class Workspaces {
  private tick = 0;
  /** Per source: the tick at which its last successful fetch (or clone) began. */
  private readonly fetched = new Map<string, number>();

  /**
   * What a clone or fetch runs with: git stops an HTTP transfer that stalls (below 1 KB/s for
   * stallSeconds), and the worker stops any that takes 60 times that in all (an SSH or git://
   * server that never answers).
   */
  private readonly remote: { settings: string[]; options: GitOptions };

  private constructor(
    private readonly dirs: WorkspaceDirs,
    private readonly settings: WorkspaceSettings,
  ) {
    const stall = settings.stallSeconds ?? DEFAULT_STALL_SECONDS;
    this.remote = {
      settings: ['-c', 'http.lowSpeedLimit=1000', '-c', `http.lowSpeedTime=${stall}`],
      options: { timeoutMs: stall * 60 * 1000, remote: true },
    };
  }

  /** Makes WORKSPACE_DIR's parts: runs may pass through to their checkout, never into the cache. */
  static async open(settings: WorkspaceSettings): Promise<Workspaces> {
    const dirs = {
      cache: join(settings.dir, 'cache'),
      checkouts: join(settings.dir, 'checkouts'),
      scratch: join(settings.dir, 'scratch'),
    };
    const modes: [string, number][] = [
      [settings.dir, 0o711],
      [dirs.cache, 0o700],
      [dirs.checkouts, 0o711],
      [dirs.scratch, 0o700],
    ];
    for (const [dir, mode] of modes) {
      try {
        await mkdir(dir, { recursive: true, mode });
        await chmod(dir, mode);
      } catch (error) {
        throw new Error(
          `WORKSPACE_DIR=${settings.dir}: cannot create ${dir}: ${(error as Error).message}`,
        );
      }
    }
    return new Workspaces(dirs, settings);
  }

  /** Where the job's checkout is: the same directory for each of its attempts. */
  checkoutDir(jobKey: string): string {
    return join(this.dirs.checkouts, shortHash(jobKey));
  }

  /**
   * The job's checkout of `request.source` at `request.ref`, with `patch` (an earlier attempt's
   * change) applied; a GitError in one line when it cannot be made, and nothing left on disk.
   */
  async checkout(
    jobKey: string,
    request: WorkspaceRequest,
    patch: Buffer | null,
    /** Stops a clone or fetch from the source: the job is stopping. */
    signal?: AbortSignal,
  ): Promise<Checkout> {
    const cache = join(this.dirs.cache, `${shortHash(request.source)}.git`);
    const id = shortHash(jobKey);
    const dir = this.checkoutDir(jobKey);
    const holder = `${dir}.holder`;
    const scratch = join(this.dirs.scratch, id);
    // Held before the cache is used: a sweep then neither prunes the cache nor takes the checkout
    // (one deciding to remove the checkout left here before is waited for: see checkoutLock).
    await withLock(checkoutLock(dir), () => writeHolder(holder, { ...thisProcess(), cache }));
    try {
      const base = await this.commitOf(cache, request, signal);
      await utimes(cache, new Date(), new Date());
      // An earlier attempt's, whose run may have made it deeper than a path can name.
      await removeTree(dir);
      await cloneAt(cache, dir, base, patch);
      const checkout = new Checkout({
        dir,
        base,
        cache,
        scratch,
        holder,
        keepFailedSeconds: this.settings.keepFailedSeconds ?? 0,
      });
      await checkout.adoptIndex();
      return checkout;
    } catch (error) {
      await removeTree(dir);
      await rm(scratch, { recursive: true, force: true });
      await removeHolder(holder);
      throw error;
    }
  }

  /**
   * Removes what nobody holds (checkouts of workers that died, failed attempts' checkouts whose
   * time is over, left checkouts no run can be in any more, cached clones past the limits) and
   * measures what is left.
   */
  async sweep(): Promise<DiskUse> {
    const limits = this.settings.cacheLimits ?? { maxBytes: 0, maxAgeSeconds: 0 };
    return sweep(this.dirs, limits, this.settings.runMayBeIn ?? (() => Promise.resolve(false)));
  }

  /** The commit `ref` names in the source, cloning or fetching it first where needed. */
  private async commitOf(
    cache: string,
    { source, ref }: WorkspaceRequest,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const asked = ++this.tick;
    // Waiting behind another job's clone of the source ends when this job stops.
    return withLock(
      `${cache}.lock`,
      async () => {
        if (!(await exists(cache))) await this.clone(source, cache, signal);
        else if (!(FULL_COMMIT.test(ref) && (await resolve(cache, ref)) !== null)) {
          // A fetch that began after this job asked has brought what it would.
          if ((this.fetched.get(cache) ?? 0) < asked) await this.fetch(cache, signal);
        }
        const commit = await resolve(cache, ref);
        if (commit === null) {
          throw new GitError(
            `ref ${JSON.stringify(ref)} is not a branch, tag or commit of ${source}`,
          );
        }
        return commit;
      },
      signal,
    ).catch((error: unknown) => {
      if (error instanceof GitError || signal?.aborted !== true) throw error;
      throw new GitError(`waiting to clone or fetch ${source} was stopped: its job is stopping`);
    });
  }

  private async clone(source: string, cache: string, signal?: AbortSignal): Promise<void> {
    const began = ++this.tick;
    const partial = `${cache}.partial`;
    await rm(partial, { recursive: true, force: true });
    try {
      await git([...this.remote.settings, 'clone', '--bare', '--quiet', '--', source, partial], {
        ...this.remote.options,
        signal,
      });
      await rename(partial, cache);
    } catch (error) {
      await rm(partial, { recursive: true, force: true });
      throw error;
    }
    this.settings.onClone?.();
    this.fetched.set(cache, began);
  }

  private async fetch(cache: string, signal?: AbortSignal): Promise<void> {
    const began = ++this.tick;
    await git(
      [
        ...this.remote.settings,
        'fetch',
        '--quiet',
        '--force',
        'origin',
        'refs/heads/*:refs/heads/*',
        'refs/tags/*:refs/tags/*',
      ],
      { ...this.remote.options, gitDir: cache, signal },
    );
    this.fetched.set(cache, began);
  }
}

/** A clone of the cache at `dir` checked out at `base`, with `patch` applied. */
async function cloneAt(cache: string, dir: string, base: string, patch: Buffer | null) {
  // --local: the objects are hard links to the cache's (read-only, root's), nothing copied.
  await git(['clone', '--local', '--no-checkout', '--quiet', cache, dir]);
  const own = { gitDir: join(dir, '.git'), workTree: dir, cwd: dir };
  await git(['checkout', '--quiet', '--detach', base], own);
  // Branches other jobs committed their changes on are theirs.
  const theirs = await gitText(
    ['for-each-ref', '--format=delete %(refname)', 'refs/remotes/origin/claudebox/'],
    own,
  );
  if (theirs !== '') await git(['update-ref', '--stdin'], { ...own, input: `${theirs}\n` });
  if (patch !== null && patch.length > 0) {
    await git(['apply', '--binary', '--whitespace=nowarn', '-'], { ...own, input: patch });
  }
}

async function resolve(cache: string, ref: string): Promise<string | null> {
  try {
    return await gitText(
      ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`],
      {
        gitDir: cache,
      },
    );
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
