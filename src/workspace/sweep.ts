import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { diskBytes } from '../common/disk-bytes.js';
import { holds, readHolder, removeHolder } from './holder.js';
import { removeStaleLock, withLock } from './lock.js';
import { removeTree } from '../common/remove-tree.js';

export interface WorkspaceDirs {
  readonly cache: string;
  readonly checkouts: string;
  readonly scratch: string;
}

export interface CacheLimits {
  /** WORKSPACE_CACHE_MAX_BYTES; 0: no limit. */
  readonly maxBytes: number;
  /** WORKSPACE_CACHE_MAX_AGE_SECONDS since a clone was last used; 0: no limit. */
  readonly maxAgeSeconds: number;
}

export interface DiskUse {
  readonly checkoutBytes: number;
  readonly cacheBytes: number;
}

const HOLDER = '.holder';

const LOCK = '.lock';

/** The lock a checkout's holder is written under, and a sweep removes it under. */
export function checkoutLock(checkout: string): string {
  return `${checkout}${LOCK}`;
}

/**
 * Removes the checkouts nobody holds (their worker died, or a failed attempt's time to be kept
 * is over) and no run may still be in (`runMayBeIn`), and the cached clones past their age or
 * over the size cap, least recently used first, never one a live checkout was made from; then
 * measures what is left.
 */
export async function sweep(
  dirs: WorkspaceDirs,
  limits: CacheLimits,
  runMayBeIn: (dir: string) => Promise<boolean>,
): Promise<DiskUse> {
  await removeUnheldCheckouts(dirs, runMayBeIn);
  await removeDeadClones(dirs);
  await pruneCache(dirs, limits);
  // The cache first: a checkout's hard-linked objects are the cache's bytes, not its own.
  const seen = new Set<string>();
  const cacheBytes = await diskBytes(dirs.cache, seen);
  const checkoutBytes = await diskBytes(dirs.checkouts, seen);
  return { cacheBytes, checkoutBytes };
}

/**
 * Removes what a clone that never finished left (its worker died mid-clone): under the clone's
 * lock, which a clone under way holds, so only a dead one's is taken.
 */
async function removeDeadClones(dirs: WorkspaceDirs): Promise<void> {
  const names = await readdir(dirs.cache);
  for (const name of names.filter((entry) => entry.endsWith(PARTIAL))) {
    const clone = join(dirs.cache, name.slice(0, -PARTIAL.length));
    await withLock(`${clone}.lock`, () =>
      rm(join(dirs.cache, name), { recursive: true, force: true }),
    );
  }
}

/** What a clone is made in before it is renamed to its place (see Workspaces.clone). */
const PARTIAL = '.partial';

async function removeUnheldCheckouts(
  dirs: WorkspaceDirs,
  runMayBeIn: (dir: string) => Promise<boolean>,
): Promise<void> {
  const names = await readdir(dirs.checkouts);
  const ids = new Set(
    names
      .filter((name) => !name.includes('.') || name.endsWith(HOLDER))
      .map((name) => name.replace(HOLDER, '')),
  );
  for (const id of ids) {
    const holderPath = join(dirs.checkouts, id + HOLDER);
    if (holds(await readHolder(holderPath), Date.now())) continue;
    const checkout = join(dirs.checkouts, id);
    // Under the lock a job's next attempt takes to hold the checkout: held by then, it stays.
    await withLock(checkoutLock(checkout), async () => {
      if (holds(await readHolder(holderPath), Date.now())) return;
      if (await runMayBeIn(checkout)) return;
      await removeTree(checkout);
      await rm(join(dirs.scratch, id), { recursive: true, force: true });
      await removeHolder(holderPath);
    });
  }
  // A worker that died holding a checkout's lock left it, and nobody may ask for it again.
  for (const name of names.filter((entry) => entry.endsWith(LOCK))) {
    await removeStaleLock(join(dirs.checkouts, name));
  }
}

/** The cached clones that checkouts of running attempts were made from. */
async function cachesInUse(dirs: WorkspaceDirs): Promise<Set<string>> {
  const names = (await readdir(dirs.checkouts)).filter((name) => name.endsWith(HOLDER));
  const inUse = new Set<string>();
  for (const name of names) {
    const holder = await readHolder(join(dirs.checkouts, name));
    if (holder !== null && 'pid' in holder && holds(holder, Date.now())) inUse.add(holder.cache);
  }
  return inUse;
}

async function pruneCache(dirs: WorkspaceDirs, limits: CacheLimits): Promise<void> {
  if (limits.maxBytes === 0 && limits.maxAgeSeconds === 0) return;
  const clones = await clonesByLastUse(dirs.cache);
  let total = clones.reduce((sum, clone) => sum + clone.bytes, 0);
  const oldest = Date.now() - limits.maxAgeSeconds * 1000;
  for (const clone of clones) {
    const tooOld = limits.maxAgeSeconds > 0 && clone.usedAt < oldest;
    const tooMuch = limits.maxBytes > 0 && total > limits.maxBytes;
    if (!tooOld && !tooMuch) continue;
    // Under its lock no job clones or fetches it; a job about to use it holds it already.
    const removed = await withLock(`${clone.path}.lock`, async () => {
      if ((await cachesInUse(dirs)).has(clone.path)) return false;
      await rm(clone.path, { recursive: true, force: true });
      return true;
    });
    if (removed) total -= clone.bytes;
  }
}

/** The cached clones, least recently used first (a job's use sets its clone's mtime). */
async function clonesByLastUse(
  cache: string,
): Promise<{ path: string; usedAt: number; bytes: number }[]> {
  const names = (await readdir(cache)).filter((name) => name.endsWith('.git'));
  const clones = [];
  for (const name of names) {
    const path = join(cache, name);
    const stats = await stat(path).catch(() => null);
    if (stats === null) continue;
    clones.push({ path, usedAt: stats.mtimeMs, bytes: await diskBytes(path, new Set()) });
  }
  return clones.sort((a, b) => a.usedAt - b.usedAt);
}
