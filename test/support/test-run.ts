import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** Set by the global setup for the whole test run; every process the tests start inherits it. */
export const TEST_RUN_VARIABLE = 'CLAUDEBOX_TEST_SESSION';

/** What every queue name of this test run starts with. */
export function testQueuePrefix(): string {
  const run = process.env[TEST_RUN_VARIABLE] ?? '';
  return `test-${run.slice(0, 8)}-`;
}

/**
 * Removes what this test run's jobs left in a scratch root: the directories of jobs that named
 * no working directory and never ended (their retry was still due), which a worker of the queue
 * would have swept had it lived on, and their notes. Every run has ended by now.
 */
export function removeScratchOfTestRun(scratchRoot: string): number {
  const prefix = `bull:${testQueuePrefix()}`;
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(scratchRoot);
  } catch {
    return 0;
  }
  for (const name of names.filter((each) => each.endsWith('.job'))) {
    const note = join(scratchRoot, name);
    let jobKey: string;
    try {
      jobKey = readFileSync(note, 'utf8');
    } catch {
      continue;
    }
    if (!jobKey.startsWith(prefix)) continue;
    rmSync(note.slice(0, -'.job'.length), { recursive: true, force: true });
    rmSync(note, { force: true });
    removed++;
  }
  return removed;
}
