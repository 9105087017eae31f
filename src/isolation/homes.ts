import { join } from 'node:path';
import { listOrNothing } from '../common/paths.js';
import { removeTree } from '../common/remove-tree.js';

/** A run's home in RUN_ROOT/homes: named after its uid, so what a uid's runs left is found. */
export function homeOf(homes: string, uid: number, runId: string): string {
  return join(homes, `${uid}-${runId}`);
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
