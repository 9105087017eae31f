import { createHash, randomUUID } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { listOrNothing } from '../common/paths.js';
import { IsolationError } from './errors.js';
import { removeTree } from '../common/remove-tree.js';
import type { UnclearedReach } from './uncleared-reach.js';

/**
 * The working directories of jobs that name none: `RUN_ROOT/scratch/<hash of the job's key>`,
 * kept across a job's attempts and removed once it is over. Beside each, `<hash>.job` names the
 * job's key (root's alone: the run owns its directory while it runs), so that a sweep can find
 * the directory of a job that never came back (removed while it waited for its next attempt,
 * say) and remove it.
 */
export interface ScratchDirs {
  /** Where the job with this key works when it names no directory. */
  readonly scratchDir: (jobKey: string) => string;
  /** The job's directory and its note. */
  readonly scratchPaths: (jobKey: string) => string[];
  /** Makes the job's directory (0700, root's until it is handed to a run) and notes its job. */
  readonly makeScratch: (jobKey: string) => void;
  /** Removes the job's directory; throws, keeping it, where a run could still be in it. */
  readonly removeScratch: (jobKey: string) => Promise<void>;
  /**
   * Removes the directories of the jobs under `keyPrefix` (one queue's) that are over or gone
   * (`areOver`, in the order asked), but for one a run is in or could still be in; how many.
   */
  readonly sweepScratch: (
    keyPrefix: string,
    areOver: (jobKeys: string[]) => Promise<boolean[]>,
  ) => Promise<number>;
}

const NOTE = '.job';

export function scratchDirs(
  root: string,
  reaching: (dirs: readonly string[]) => Promise<UnclearedReach | null>,
): ScratchDirs {
  const dirOf = (jobKey: string): string =>
    join(root, createHash('sha256').update(jobKey).digest('hex').slice(0, 32));
  const removeDir = async (dir: string): Promise<void> => {
    const reach = await reaching([dir]);
    if (reach !== null) {
      throw new IsolationError(
        `kept ${dir}: a process of an earlier run, whose uid ${reach.uid} could not be cleared yet, may still be there`,
      );
    }
    await removeTree(dir);
    forget(`${dir}${NOTE}`);
  };
  return {
    scratchDir: dirOf,
    scratchPaths: (jobKey) => [dirOf(jobKey), `${dirOf(jobKey)}${NOTE}`],
    makeScratch: (jobKey) => {
      const dir = dirOf(jobKey);
      // Synchronous, as the run's other calls on root's own directories.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      try {
        writeFileSync(`${dir}${NOTE}`, jobKey, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        // Noted by an earlier attempt.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    },
    removeScratch: (jobKey) => removeDir(dirOf(jobKey)),
    sweepScratch: async (keyPrefix, areOver) => {
      await removeTrash(root);
      const noted = notedJobs(root).filter(({ jobKey }) => jobKey.startsWith(keyPrefix));
      const over = await areOver(noted.map(({ jobKey }) => jobKey));
      let removed = 0;
      for (const [index, { dir }] of noted.entries()) {
        // A dead worker's run is taken over first: its directory is root's again then.
        if (over[index] !== true || (await reaching([dir])) !== null) continue;
        const trash = moveAway(root, dir);
        if (trash === null) continue;
        await removeTree(trash).catch(() => undefined);
        removed++;
      }
      return removed;
    },
  };
}

/** What moveAway names a directory, in the scratch root, until it is removed. */
const TRASH = '.gone-';

/**
 * Moves a job's directory out of its job's way, to be removed, unless a run was handed it (it is
 * not root's): the trash's path, or null. Looked at and moved in one synchronous step, so no
 * attempt of this worker hands it over in between; where another worker's did, the look after
 * the move tells, and it is moved back. What removeTree then walks as root is no run's.
 */
function moveAway(root: string, dir: string): string | null {
  const owner = ownerOf(dir);
  // Gone already: only its note is left.
  if (owner === -1) forget(`${dir}${NOTE}`);
  if (owner !== 0) return null;
  const trash = join(root, `${TRASH}${basename(dir)}-${randomUUID()}`);
  try {
    renameSync(dir, trash);
  } catch {
    return null;
  }
  if (ownerOf(trash) !== 0) {
    try {
      renameSync(trash, dir);
    } catch {
      // Made again meanwhile: the run's stays in the trash, which removes only root's.
    }
    return null;
  }
  forget(`${dir}${NOTE}`);
  return trash;
}

/** Removes what moveAway left, where a sweep stopped before it was removed (root's only). */
async function removeTrash(root: string): Promise<void> {
  for (const name of listOrNothing(root)) {
    const path = join(root, name);
    if (name.startsWith(TRASH) && ownerOf(path) === 0)
      await removeTree(path).catch(() => undefined);
  }
}

/** The jobs noted in `root`, and their directories. */
function notedJobs(root: string): { readonly jobKey: string; readonly dir: string }[] {
  return listOrNothing(root)
    .filter((name) => name.endsWith(NOTE))
    .flatMap((name) => {
      const dir = join(root, name.slice(0, -NOTE.length));
      try {
        return [{ jobKey: readFileSync(join(root, name), 'utf8'), dir }];
      } catch {
        return [];
      }
    });
}

/** The owner of what is at `path`; -1 where nothing is. */
function ownerOf(path: string): number {
  try {
    return lstatSync(path).uid;
  } catch {
    return -1;
  }
}

function forget(note: string): void {
  try {
    unlinkSync(note);
  } catch {
    // Never written (a directory made before notes were), or gone already.
  }
}
