import { randomUUID } from 'node:crypto';
import { link, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive, thisProcess } from './holder.js';
import { asError } from '../common/errors.js';

const held = new Map<string, Promise<unknown>>();

/**
 * Runs `work` holding the lock at `path`: one holder at a time in this process (a queue) and
 * across the workers of a host (a file with the holder's pid and start time, taken over when that
 * process is gone, so a worker that died holding it blocks nobody). `signal` ends the wait for
 * the lock (a job stopping while another job's clone holds it), with the signal's reason.
 */
export async function withLock<T>(
  path: string,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const before = (held.get(path) ?? Promise.resolve()).catch(() => undefined);
  const mine = untilAborted(before, signal).then(() => holdingFile(path, work, signal));
  // The next in line waits for the holder before this one too, should this one give up waiting.
  const tail = Promise.all([before, mine.catch(() => undefined)]);
  held.set(path, tail);
  try {
    return await mine;
  } finally {
    if (held.get(path) === tail) held.delete(path);
  }
}

function untilAborted(waiting: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return waiting.then(() => undefined);
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const abort = () => reject(asError(signal.reason));
    signal.addEventListener('abort', abort, { once: true });
    void waiting.then(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    });
  });
}

async function holdingFile<T>(
  path: string,
  work: () => Promise<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  while (!(await takeFile(path))) {
    if (!(await holderAlive(path))) await rm(path, { force: true });
    else {
      await sleep(25, undefined, { signal }).catch(() => undefined);
      signal?.throwIfAborted();
    }
  }
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}

/**
 * Creates the lock file at `path` whole, naming this process: written aside first, then linked
 * into place, so that no lock file is ever there without its holder in it (a worker killed
 * between creating and writing one, or a full disk, would leave one nobody could take over).
 * False when the lock is held.
 */
async function takeFile(path: string): Promise<boolean> {
  const me = thisProcess();
  const staged = `${path}.${randomUUID()}`;
  try {
    await writeFile(staged, `${me.pid} ${me.started}`, { flag: 'wx', mode: 0o600 });
    await link(staged, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(staged, { force: true });
  }
}

/** How long a lock file without its holder in it may be one being written. */
const UNNAMED_LOCK_MS = 10_000;

async function holderAlive(path: string): Promise<boolean> {
  const [pidText = '', started = ''] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
  const pid = Number(pidText);
  if (Number.isInteger(pid) && pid > 0) return processAlive(pid, started);
  // Left empty by a version that wrote it in place: just written, or its writer died.
  const age = await stat(path).then(
    (stats) => Date.now() - stats.mtimeMs,
    () => 0,
  );
  return age < UNNAMED_LOCK_MS;
}

/** Removes the lock file at `path` where its holder is gone (a sweep's tidying). */
export async function removeStaleLock(path: string): Promise<void> {
  if (!(await holderAlive(path))) await rm(path, { force: true });
}
