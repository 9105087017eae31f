import { closeSync, rmdirSync, unlinkSync } from 'node:fs';
import { execa } from 'execa';
import { holdDir, inHeld, walkHeld } from './held-tree.js';

/**
 * Removes a directory tree, or a file, of root's keeping (a run's home, a job's scratch
 * directory) once nothing of its run is left to change it: symlinks themselves, never what they
 * point to, and never through a directory another run swapped for a symlink meanwhile (see
 * walkHeld). Synchronous calls in slices: several times cheaper for the worker than
 * `fs.promises.rm`, whose every call is a round trip through the thread pool, and a large tree
 * does not hold up the other runs' events. Does nothing where the tree is gone; throws, naming
 * it, when it cannot be removed.
 */
export async function removeTree(top: string): Promise<void> {
  try {
    await removeHeld(top);
  } catch (error) {
    // A tree deeper than the worker may hold descriptors (EMFILE), say: rm walks it by its own.
    const removed = await execa('rm', ['-rf', '--one-file-system', '--', top], {
      reject: false,
      env: { PATH: '/usr/bin:/bin' },
      extendEnv: false,
      stdin: 'ignore',
    });
    if (removed.exitCode !== 0) {
      throw new Error(
        `could not remove ${top}: ${(error as Error).message}; rm -rf: ${removed.stderr.trim().split('\n').at(-1) ?? ''}`,
      );
    }
  }
}

async function removeHeld(top: string): Promise<void> {
  const dir = holdDir(top);
  // A file, a symlink, or nothing: its parent is root's, where no run can put another in its place.
  if (dir === undefined) return gone(() => unlinkSync(top));
  try {
    await walkHeld(dir, {
      entry: (parent, entry) => {
        if (entry.isDirectory()) return true;
        gone(() => unlinkSync(inHeld(parent, entry.name)));
        return false;
      },
      notDirectory: (parent, name) => gone(() => unlinkSync(inHeld(parent, name))),
      left: (parent, name) => gone(() => rmdirSync(inHeld(parent, name))),
    });
  } finally {
    closeSync(dir);
  }
  gone(() => rmdirSync(top));
}

/** `action`'s value; undefined where what it acts on is not there (any more). */
function gone<T>(action: () => T): T | undefined {
  try {
    return action();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
