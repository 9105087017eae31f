import { readdirSync } from 'node:fs';
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
