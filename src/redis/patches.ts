import type { RedisClient } from './connections.js';
import { patchKey, type QueueAddress } from '../contract/index.js';

/** A job's workspace change as kept in Redis. */
export interface StoredPatch {
  /** The commit the patch applies to. */
  readonly base: string;
  /** Size of the whole patch, kept or not. */
  readonly bytes: number;
  /** True when the patch was over the cap: `patch` is then a summary of it, not a patch. */
  readonly truncated: boolean;
  readonly patch: Buffer;
}

/**
 * Keeps a job's patch (a later checkpoint or attempt replaces an earlier one) for `ttlSeconds`;
 * one over `maxBytes` is kept as `summary` instead. Says whether it was truncated.
 */
export async function storePatch(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
  change: {
    base: string;
    bytes: number;
    /** The patch, or null when it was too large to hold. */
    patch: Buffer | null;
    summary: () => string;
  },
  limits: { maxBytes: number; ttlSeconds: number },
): Promise<boolean> {
  const kept =
    change.patch !== null && change.patch.length <= limits.maxBytes ? change.patch : null;
  const key = patchKey(address, jobId);
  const replies = await redis
    .multi()
    .del(key)
    .hset(key, {
      base: change.base,
      bytes: String(change.bytes),
      truncated: kept === null ? '1' : '0',
      patch: kept ?? Buffer.from(change.summary(), 'utf8'),
    })
    .expire(key, limits.ttlSeconds)
    .exec();
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
  return kept === null;
}

/** The job's stored patch, or null when it has none (no workspace, or expired). */
export async function readPatch(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
): Promise<StoredPatch | null> {
  const fields = await redis.hgetallBuffer(patchKey(address, jobId));
  const { base, bytes, truncated, patch } = fields;
  if (base === undefined || patch === undefined) return null;
  return {
    base: base.toString('utf8'),
    bytes: Number(bytes?.toString('utf8') ?? patch.length),
    truncated: truncated?.toString('utf8') === '1',
    patch,
  };
}
