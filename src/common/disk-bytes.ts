import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes on disk under `path`, each file counted once however many hard links it has: `seen`
 * carries the files already counted, so a checkout's objects (hard links to its cache's) count
 * where they were first met. Files that vanish while counted count nothing.
 */
export async function diskBytes(path: string, seen: Set<string>): Promise<number> {
  const stats = await lstat(path, { bigint: true }).catch(() => null);
  if (stats === null) return 0;
  let bytes = 0;
  const inode = `${stats.dev}:${stats.ino}`;
  if (!seen.has(inode)) {
    seen.add(inode);
    bytes += Number(stats.blocks) * 512;
  }
  if (!stats.isDirectory()) return bytes;
  const names = await readdir(path).catch(() => [] as string[]);
  for (const name of names) bytes += await diskBytes(join(path, name), seen);
  return bytes;
}
