import { randomUUID } from 'node:crypto';
import { closeSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
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
export async function removeTree(top: string | Buffer): Promise<void> {
  try {
    await removeHeld(top);
  } catch (error) {
    // A tree deeper than the worker may hold descriptors (EMFILE), say: rm walks it by its own,
    // by a path that can go on its command line.
    const path = typeof top === 'string' ? top : (utf8(top) ?? renamedToText(top, error));
    const removed = await execa('rm', ['-rf', '--one-file-system', '--', path], {
      reject: false,
      env: { PATH: '/usr/bin:/bin' },
      extendEnv: false,
      stdin: 'ignore',
    });
    if (removed.exitCode !== 0) {
      throw new Error(
        `could not remove ${path}: ${(error as Error).message}; rm -rf: ${removed.stderr.trim().split('\n').at(-1) ?? ''}`,
      );
    }
  }
}

/**
 * A path of bytes that are no UTF-8, renamed in its directory (root's, where no run may put
 * another entry in its place) to a name of text; throws `error` where that cannot be.
 */
function renamedToText(path: Buffer, error: unknown): string {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? null : utf8(path.subarray(0, slash));
  if (dir === null) throw error;
  const renamed = `${dir}/.claudebox-removing-${randomUUID()}`;
  renameSync(path, renamed);
  return renamed;
}

/** `bytes` as text where they are UTF-8, else null. */
function utf8(bytes: Buffer): string | null {
  const text = bytes.toString('utf8');
  return Buffer.from(text).equals(bytes) ? text : null;
}

async function removeHeld(top: string | Buffer): Promise<void> {
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
