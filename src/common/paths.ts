import { isAbsolute, relative } from 'node:path';

/** Whether `path` is `dir` or below it (both absolute and resolved); `..name` is a name. */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
}
