import { closeSync, fstatSync, lstatSync, type BigIntStats } from 'node:fs';
import { holdDir, inHeld, walkHeld } from './held-tree.js';

/**
 * Bytes on disk under `path`, each file counted once however many hard links it has: `seen`
 * carries the files already counted, so a checkout's objects (hard links to its cache's) count
 * where they were first met. Files that vanish while counted count nothing. Walked by
 * descriptors (see walkHeld): runs write in what it measures, and a directory swapped for a
 * symlink meanwhile never has the worker measure what the link points to.
 */
export async function diskBytes(path: string, seen: Set<string>): Promise<number> {
  const count = (stats: BigIntStats | undefined): number => {
    if (stats === undefined) return 0;
    const inode = `${stats.dev}:${stats.ino}`;
    if (seen.has(inode)) return 0;
    seen.add(inode);
    return Number(stats.blocks) * 512;
  };
  const top = holdDir(path);
  if (top === undefined) return count(lstatSync(path, { bigint: true, throwIfNoEntry: false }));
  let bytes = count(fstatSync(top, { bigint: true }));
  try {
    await walkHeld(top, {
      entry: (dir, entry) => {
        const stats = lstatSync(inHeld(dir, entry.name), { bigint: true, throwIfNoEntry: false });
        bytes += count(stats);
        return stats?.isDirectory() === true;
      },
    });
  } catch {
    // A directory gone while it was listed: what was counted stands.
  } finally {
    closeSync(top);
  }
  return bytes;
}
