import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { listOrNothing } from '../common/paths.js';
import { removeTree } from '../common/remove-tree.js';

/** A run's home in RUN_ROOT/homes: named after its uid, so what a uid's runs left is found. */
export function homeOf(homes: string, uid: number, runId: string): string {
  return join(homes, `${uid}-${runId}`);
}

/** Removes a run's home, and its temporary directories where it had them. */
export async function removeHome(home: string): Promise<void> {
  await removeTree(home);
  await removeTree(sandboxTempOf(home));
}

/**
 * Removes the homes of `uid`'s runs (call it once none of them runs any more): every one it can,
 * then throws the first failure, if any.
 */
export async function removeHomesOf(homes: string, uid: number): Promise<void> {
  const failures: Error[] = [];
  for (const name of listOrNothing(homes)) {
    if (!name.startsWith(`${uid}-`)) continue;
    await removeTree(join(homes, name)).catch((error: unknown) => failures.push(error as Error));
  }
  const [first] = failures;
  if (first !== undefined) throw first;
}

/**
 * A sandboxed run's own /tmp, /var/tmp and /dev/shm, each a directory of `sandboxTempOf` its
 * home: on RUN_ROOT's disk, never a tmpfs, whose files would take the host's memory where no
 * process of the run shows them, for the OOM killer or anyone.
 */
export const SANDBOX_TEMP: readonly (readonly [mountedAt: string, name: string])[] = [
  ['/tmp', 'tmp'],
  ['/var/tmp', 'var-tmp'],
  ['/dev/shm', 'shm'],
];

/**
 * Where a sandboxed run's temporary directories are: beside its home, named after it (so they
 * go with the uid's homes), not in it, as a home below /tmp would then hold its own /tmp.
 */
export function sandboxTempOf(home: string): string {
  return `${home}.temp`;
}

/** Makes a run's temporary directories (see SANDBOX_TEMP), its uid's own. */
export function makeSandboxTemp(home: string, uid: number, mode = 0o700): void {
  const top = sandboxTempOf(home);
  for (const dir of [top, ...SANDBOX_TEMP.map(([, name]) => join(top, name))]) {
    mkdirSync(dir, { mode });
    chownSync(dir, uid, uid);
  }
}
