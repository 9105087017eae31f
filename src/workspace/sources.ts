import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isInside } from '../common/paths.js';

/** Whether WORKSPACE_SOURCES allows `source`: the reason it does not, or null when it does. */
export async function sourceRefusal(
  source: string,
  allowed: readonly string[],
): Promise<string | null> {
  const listed = `(WORKSPACE_SOURCES=${allowed.join(',')})`;
  const quoted = JSON.stringify(source);
  if (allowed.length === 0) {
    return `${quoted} is not allowed: this worker allows no workspace sources (WORKSPACE_SOURCES is empty)`;
  }
  // git reads a file: URL as the path it decodes to: judged as that path.
  const path = localPath(source);
  if (path === null) return `${quoted} is not a file: URL of a local path`;
  if (path !== undefined) {
    // Symlinks resolved: a link under an allowed directory that points out of it is out of it.
    const real = await realpath(resolve(path)).catch(() => resolve(path));
    const roots = allowed.flatMap((entry) => localPath(entry) ?? []).map((root) => resolve(root));
    if (roots.some((root) => isInside(real, root))) return null;
    return `${quoted} is not inside a directory this worker allows ${listed}`;
  }
  // Escaped dots and slashes too (%2e%2e, ..%2f): git or the server may decode them.
  const decoded = decodedOrNull(source);
  if (decoded === null) return `${quoted} has a malformed %-escape`;
  if ([source, decoded].some((form) => /(^|\/)\.\.(\/|$)/.test(form))) {
    return `${quoted} must not contain ".." segments`;
  }
  const urls = allowed.filter((entry) => localPath(entry) === undefined);
  if (urls.some((prefix) => source.startsWith(prefix))) return null;
  return `${quoted} does not start with a source this worker allows ${listed}`;
}

/** The local path a source names (absolute, or a file: URL); undefined: another kind; null: a file: URL of none. */
function localPath(source: string): string | null | undefined {
  if (source.startsWith('/')) return source;
  if (!/^file:/i.test(source)) return undefined;
  try {
    return fileURLToPath(source);
  } catch {
    return null;
  }
}

function decodedOrNull(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}
