import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveStartTime } from '../common/proc-stat.js';

/**
 * Claims to end a dead worker's lease (see endLease). Whoever ends a lease first creates its
 * claim, exclusively, naming itself in it. A claimant that died before it was done (a watchdog
 * SIGKILLed with its worker, a worker mid-takeover) leaves its claim: the next one to come
 * creates the claim of the next generation, again exclusively, so that of several finding the
 * same dead claimant exactly one goes on, and the uid is not kept from every run for good.
 */

/** Who claimed: a process, named by pid and start time so a recycled pid is told. */
interface Claimant {
  readonly pid: number;
  readonly startTime: string;
}

/**
 * How long a takeover waits for a claim under way (a clearing takes a few ms, or 20 s at worst);
 * an unreadable claim younger than this is taken for a live claimant's: one being written, or one
 * of a worker from before claims named their claimant.
 */
export const CLAIM_WAIT_MS = 25_000;
/** Generations tried at most: each is a claimant that died while it ended the lease. */
const MAX_GENERATIONS = 64;

/** The claim of `generation` to end `lease` of `uid`; the first keeps its name of old. */
function claimPath(leaseDir: string, uid: number, lease: string, generation: number): string {
  const first = join(leaseDir, `${uid}.ending-${lease}`);
  return generation === 1 ? first : `${first}.${generation}`;
}

/** Claims the ending of `lease`: the generation claimed, or null where a live claimant has it. */
export function claimEnding(leaseDir: string, uid: number, lease: string): number | null {
  const me: Claimant = { pid: process.pid, startTime: liveStartTime(process.pid) ?? '' };
  for (let generation = 1; generation <= MAX_GENERATIONS; generation++) {
    const path = claimPath(leaseDir, uid, lease, generation);
    if (create(path, me)) return generation;
    if (claimantAlive(path)) return null;
  }
  return null;
}

/** Whether a live claimant is ending `lease` now. */
export function claimUnderWay(leaseDir: string, uid: number, lease: string): boolean {
  for (let generation = 1; generation <= MAX_GENERATIONS; generation++) {
    const path = claimPath(leaseDir, uid, lease, generation);
    if (statSync(path, { throwIfNoEntry: false }) === undefined) return false;
    if (claimantAlive(path)) return true;
  }
  return false;
}

/** Removes the claims up to `generation`: the dead claimants' before it, then its own. */
export function dropClaims(leaseDir: string, uid: number, lease: string, generation: number): void {
  for (let at = generation; at >= 1; at--) {
    try {
      unlinkSync(claimPath(leaseDir, uid, lease, at));
    } catch {
      // Gone already.
    }
  }
}

function create(path: string, claimant: Claimant): boolean {
  let file: number;
  try {
    file = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeFileSync(file, JSON.stringify(claimant));
  } finally {
    closeSync(file);
  }
  return true;
}

function claimantAlive(path: string): boolean {
  const claimant = readClaimant(path);
  if (claimant !== null) return liveStartTime(claimant.pid) === claimant.startTime;
  const written = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
  // Gone meanwhile: its claimant was done.
  return written === undefined ? false : Date.now() - written < CLAIM_WAIT_MS;
}

function readClaimant(path: string): Claimant | null {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as Partial<Claimant>;
    return typeof value.pid === 'number' && typeof value.startTime === 'string'
      ? { pid: value.pid, startTime: value.startTime }
      : null;
  } catch {
    return null;
  }
}
