import { readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';

/** Whether `path` is `dir` or below it (both absolute and resolved); `..name` is a name. */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
}

/** The names in `dir`; none where it cannot be read. */
export function listOrNothing(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The text of the file at `path`; undefined where it cannot be read (gone, not ours). Read
 * synchronously: the files read so are small, many made up by the kernel as they are read, and
 * the promise form's thread-pool round trip costs more than the read.
 */
export function readOrNothing(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
