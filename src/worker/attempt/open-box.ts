import { setTimeout as sleep } from 'node:timers/promises';
import { DirectoryInUseError, type RunBox } from '../../isolation/index.js';

/** How long an attempt waits for a directory of its run that another run holds. */
const DIRECTORY_WAIT_MS = 60_000;
const ASK_AGAIN_MS = 500;

/**
 * Opens the run's box. Where another run holds one of its directories, the box is asked for
 * again until that run gives it back, for up to DIRECTORY_WAIT_MS: the other run is most often
 * this job's own earlier attempt, whose worker lost the job's lock (cut off from Redis, or
 * frozen) and is stopping it, and which gives the directory back once its end is over. Null
 * where `stop` aborts meanwhile.
 */
export async function openBoxWhenFree(
  open: () => Promise<RunBox>,
  stop: AbortSignal,
  now: () => number,
): Promise<RunBox | null> {
  const giveUpAt = now() + DIRECTORY_WAIT_MS;
  for (;;) {
    try {
      return await open();
    } catch (error) {
      if (!(error instanceof DirectoryInUseError) || now() >= giveUpAt) throw error;
    }
    await sleep(ASK_AGAIN_MS, undefined, { signal: stop }).catch(() => undefined);
    if (stop.aborted) return null;
  }
}
