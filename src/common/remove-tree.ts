import { readdirSync, rmdirSync, unlinkSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { execa } from 'execa';

/**
 * Entries a walk of a tree (a removal, a hand-over) handles between two turns of the event loop.
 * Its calls are synchronous, several times cheaper for the worker than their promise forms (a
 * round trip through the thread pool each), and the slices keep a large tree from holding up
 * the other runs' events.
 */
export const SLICE = 256;

/**
 * Removes a directory tree, or a file, of root's keeping (a run's home, a job's scratch
 * directory) once nothing of its run is left to change it: symlinks themselves, never what they
 * point to. Synchronous calls in slices, as in handOver: several times cheaper for the worker
 * than `fs.promises.rm`, whose every call is a round trip through the thread pool, and a large
 * tree does not hold up the other runs' events. Does nothing where the tree is gone; throws,
 * naming it, when it cannot be removed.
 */
export async function removeTree(top: string): Promise<void> {
  try {
    await removeInSlices(top);
  } catch (error) {
    // A tree deeper than a path can name (ENAMETOOLONG), say: rm walks it by descriptors.
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

async function removeInSlices(top: string): Promise<void> {
  // Directories in the order they were found: each after its parent, so removed in reverse.
  const dirs: string[] = [];
  const stack = [top];
  let handled = 0;
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    const entries = gone(() => readdirOrUnlink(dir));
    if (entries === undefined) continue;
    dirs.push(dir);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) stack.push(path);
      else gone(() => unlinkSync(path));
      if (++handled % SLICE === 0) await nextTurn();
    }
  }
  for (const dir of dirs.reverse()) {
    gone(() => rmdirSync(dir));
    if (++handled % SLICE === 0) await nextTurn();
  }
}

/** The entries of `dir`; undefined where it is a file after all (the top, say), now removed. */
function readdirOrUnlink(dir: string): Dirent[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
    unlinkSync(dir);
    return undefined;
  }
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
