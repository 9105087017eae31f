import { open, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive, thisProcess } from './holder.js';

const held = new Map<string, Promise<unknown>>();

/**
 * Runs `work` holding the lock at `path`: one holder at a time in this process (a queue) and
 * across the workers of a host (a file with the holder's pid and start time, taken over when that
 * process is gone, so a worker that died holding it blocks nobody).
 */
export async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  const before = held.get(path) ?? Promise.resolve();
  const mine = before.catch(() => undefined).then(() => holdingFile(path, work));
  const tail = mine.catch(() => undefined);
  held.set(path, tail);
  try {
    return await mine;
  } finally {
    if (held.get(path) === tail) held.delete(path);
  }
}

async function holdingFile<T>(path: string, work: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const file = await open(path, 'wx', 0o600);
      const me = thisProcess();
      await file.writeFile(`${me.pid} ${me.started}`);
      await file.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (!(await holderAlive(path))) await rm(path, { force: true });
      else await sleep(25);
    }
  }
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}

async function holderAlive(path: string): Promise<boolean> {
  const [pidText = '', started = ''] = (await readFile(path, 'utf8').catch(() => '')).split(' ');
  const pid = Number(pidText);
  // Just written, pid not yet in it: its holder is alive.
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return processAlive(pid, started);
}
