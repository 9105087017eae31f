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
 * Keeps a job's patch (the latest attempt's replaces an earlier one) for `ttlSeconds`; one over
 * `maxBytes` is kept as `summary` instead. Says whether it was truncated.
 */
export async function storePatch(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
  change: { base: string; patch: Buffer; summary: () => string },
  limits: { maxBytes: number; ttlSeconds: number },
): Promise<boolean> {
  const truncated = change.patch.length > limits.maxBytes;
  const key = patchKey(address, jobId);
  const replies = await redis
    .multi()
    .del(key)
    .hset(key, {
      base: change.base,
      bytes: String(change.patch.length),
      truncated: truncated ? '1' : '0',
      patch: truncated ? Buffer.from(change.summary(), 'utf8') : change.patch,
    })
    .expire(key, limits.ttlSeconds)
    .exec();
  const failed = replies?.find(([error]) => error !== null)?.[0];
  if (failed) throw failed;
  return truncated;
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
