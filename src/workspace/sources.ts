import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { isInside } from '../common/paths.js';

/** Whether WORKSPACE_SOURCES allows `source`: the reason it does not, or null when it does. */
export async function sourceRefusal(
  source: string,
  allowed: readonly string[],
): Promise<string | null> {
  const listed = `(WORKSPACE_SOURCES=${allowed.join(',')})`;
  if (allowed.length === 0) {
    return `${JSON.stringify(source)} is not allowed: this worker allows no workspace sources (WORKSPACE_SOURCES is empty)`;
  }
  if (source.startsWith('/')) {
    // Symlinks resolved: a link under an allowed directory that points out of it is out of it.
    const real = await realpath(resolve(source)).catch(() => resolve(source));
    const roots = allowed.filter((entry) => entry.startsWith('/')).map((entry) => resolve(entry));
    if (roots.some((root) => isInside(real, root))) return null;
    return `${JSON.stringify(source)} is not inside a directory this worker allows ${listed}`;
  }
  if (/(^|\/)\.\.(\/|$)/.test(source)) {
    return `${JSON.stringify(source)} must not contain ".." segments`;
  }
  const urls = allowed.filter((entry) => !entry.startsWith('/'));
  if (urls.some((prefix) => source.startsWith(prefix))) return null;
  return `${JSON.stringify(source)} does not start with a source this worker allows ${listed}`;
}
