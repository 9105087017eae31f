import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';

export interface ClaudeBinary {
  readonly path: string;
  /** Where it came from: CLAUDE_BIN, the PATH, or this package's own dependency. */
  readonly source: 'CLAUDE_BIN' | 'PATH' | 'bundled';
}

export class ClaudeBinaryError extends Error {
  override readonly name = 'ClaudeBinaryError';
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The first executable file `name` on PATH (and not one `skip` refuses), or null. */
export async function searchPath(
  name: string,
  pathVariable: string | undefined,
  skip: (path: string) => Promise<boolean> = () => Promise.resolve(false),
): Promise<string | null> {
  for (const dir of (pathVariable ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if ((await isExecutableFile(candidate)) && !(await skip(candidate))) return candidate;
  }
  return null;
}

/**
 * Whether a `claude` found on PATH is this package's own npm wrapper (`npm start` puts
 * node_modules/.bin first on PATH). That wrapper is a placeholder until its postinstall step
 * ran, so the bundled binary is taken from its platform package instead.
 */
async function isOwnWrapper(path: string): Promise<boolean> {
  try {
    const wrapper = dirname(
      createRequire(import.meta.url).resolve('@anthropic-ai/claude-code/package.json'),
    );
    const real = await realpath(path);
    return real.startsWith(`${await realpath(wrapper)}/`);
  } catch {
    return false;
  }
}

/**
 * The native binary of `@anthropic-ai/claude-code`, found through its per-platform package so
 * it works even where npm did not run the wrapper's postinstall step.
 */
export async function bundledBinary(): Promise<string | null> {
  const musl = isMusl() ? '-musl' : '';
  const manifest = `@anthropic-ai/claude-code-${process.platform}-${process.arch}${musl}/package.json`;
  try {
    const path = join(dirname(createRequire(import.meta.url).resolve(manifest)), 'claude');
    return (await isExecutableFile(path)) ? path : null;
  } catch {
    return null; // not installed for this platform
  }
}

function isMusl(): boolean {
  if (process.platform !== 'linux') return false;
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report.header?.glibcVersionRuntime === undefined;
}

/**
 * Finds the CLI to run: CLAUDE_BIN if set, else a `claude` on PATH (one installed on the machine),
 * else the one this package depends on.
 */
export async function resolveClaudeBinary(
  configured: string | undefined,
  pathVariable: string | undefined,
): Promise<ClaudeBinary> {
  if (configured !== undefined) {
    const path =
      configured.includes('/') || isAbsolute(configured)
        ? resolve(configured)
        : await searchPath(configured, pathVariable);
    if (path === null || !(await isExecutableFile(path))) {
      throw new ClaudeBinaryError(
        `CLAUDE_BIN=${JSON.stringify(configured)}: no executable file there` +
          (path === null ? ' (not found on PATH)' : ''),
      );
    }
    return { path, source: 'CLAUDE_BIN' };
  }
  const onPath = await searchPath('claude', pathVariable, isOwnWrapper);
  if (onPath !== null) return { path: onPath, source: 'PATH' };
  const bundled = await bundledBinary();
  if (bundled !== null) return { path: bundled, source: 'bundled' };
  throw new ClaudeBinaryError(
    'no claude CLI found: set CLAUDE_BIN, put `claude` on PATH, or run `npm ci` to install ' +
      '@anthropic-ai/claude-code',
  );
}
