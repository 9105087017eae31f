import { closeSync, constants, openSync, readdirSync, type Dirent } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Entries a walk of a tree (a removal, a hand-over) handles between two turns of the event loop.
 * Its calls are synchronous, several times cheaper for the worker than their promise forms (a
 * round trip through the thread pool each), and the slices keep a large tree from holding up
 * the other runs' events.
 */
export const SLICE = 256;

/**
 * Walking by paths a tree that a run may still change (one whose modes let another run's uid in)
 * lets that run swap a directory for a symlink between its listing and the walk into it, and
 * have root act on wherever the link points. A walk holds each directory open instead, opened
 * without following a symlink, and reaches its entries through the descriptor:
 * `/proc/self/fd/<fd>/<name>` is an entry of that very directory, whatever its path has become.
 */

/** The directory at `path`, held open; undefined where it is none (gone, a symlink, a file). */
export function holdDir(path: string | Buffer): number | undefined {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

/**
 * The path of `name` in the directory held as `dir` (of the directory itself without one). A
 * name a walk lists is bytes: one that is no UTF-8, read as a string, would name nothing there.
 */
export function inHeld(dir: number): string;
export function inHeld(dir: number, name: string | Buffer): string | Buffer;
export function inHeld(dir: number, name: string | Buffer = ''): string | Buffer {
  const path = `/proc/self/fd/${dir}/`;
  return typeof name === 'string' ? `${path}${name}` : Buffer.concat([Buffer.from(path), name]);
}

/**
 * Directories a walk holds open at once, one a level: far past real trees (a checkout's deepest
 * node_modules), and a bound on the descriptors a run's tree can make the worker hold.
 */
export const MAX_HELD_DEPTH = 256;

/** What a walk does with the tree it walks (see walkHeld); names are bytes (see inHeld). */
export interface TreeVisit {
  /** Handles an entry of the directory held as `dir`: true to walk into it, a directory. */
  entry(dir: number, entry: Dirent<Buffer>): boolean;
  /** An entry to walk into that was no directory any more when it was opened. */
  notDirectory?(dir: number, name: Buffer): void;
  /** A directory walked into, once everything in it was handled (its descriptor closed). */
  left?(dir: number, name: Buffer): void;
}

/**
 * Walks the tree in the directory held as `top`, depth first, holding one descriptor a level
 * (`top` stays the caller's to close); a slice of entries between two turns of the event loop.
 * Throws where the tree nests deeper than MAX_HELD_DEPTH.
 */
export async function walkHeld(top: number, visit: TreeVisit): Promise<void> {
  type Level = { fd: number; name: Buffer; entries: Dirent<Buffer>[]; next: number };
  const levels: Level[] = [{ fd: top, name: Buffer.alloc(0), entries: list(top), next: 0 }];
  let handled = 0;
  try {
    while (levels.length > 0) {
      const level = levels.at(-1) as Level;
      const entry = level.entries[level.next++];
      if (entry === undefined) {
        levels.pop();
        const parent = levels.at(-1);
        if (parent === undefined) break;
        closeSync(level.fd);
        visit.left?.(parent.fd, level.name);
        continue;
      }
      if (visit.entry(level.fd, entry)) {
        if (levels.length > MAX_HELD_DEPTH) {
          throw new Error(`the tree nests deeper than ${MAX_HELD_DEPTH} directories`);
        }
        const fd = holdDir(inHeld(level.fd, entry.name));
        if (fd === undefined) visit.notDirectory?.(level.fd, entry.name);
        else levels.push({ fd, name: entry.name, entries: listOrClose(fd), next: 0 });
      }
      if (++handled % SLICE === 0) await nextTurn();
    }
  } finally {
    for (const level of levels.slice(1)) closeSync(level.fd);
  }
}

function list(dir: number): Dirent<Buffer>[] {
  return readdirSync(inHeld(dir), { withFileTypes: true, encoding: 'buffer' });
}

function listOrClose(dir: number): Dirent<Buffer>[] {
  try {
    return list(dir);
  } catch (error) {
    closeSync(dir);
    throw error;
  }
}
