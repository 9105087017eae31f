import type { RedisClient } from './connections.js';
import { patchKey, type QueueAddress } from '../contract/index.js';
import { evalFenced, fenceCheck, type WriteFence } from './write-fence.js';

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

/** Replaces the patch hash KEYS[1] (fields, then TTL), unless the job's lock KEYS[2] moved on. */
const STORE_SCRIPT = `
${fenceCheck(2, 6, '0')}
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'base', ARGV[1], 'bytes', ARGV[2], 'truncated', ARGV[3], 'patch', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** What became of a patch given to storePatch. */
export type PatchStored = 'kept' | 'truncated' | 'fenced';

/**
 * Keeps a job's patch (a later checkpoint or attempt replaces an earlier one) for `ttlSeconds`;
 * one over `maxBytes` is kept as `summary` instead (`truncated`). Behind a fence that no longer
 * holds, nothing is stored (`fenced`): the job is another attempt's, whose patch it would replace.
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
  fence?: WriteFence,
): Promise<PatchStored> {
  const kept =
    change.patch !== null && change.patch.length <= limits.maxBytes ? change.patch : null;
  const key = patchKey(address, jobId);
  const args = [
    change.base,
    String(change.bytes),
    kept === null ? '1' : '0',
    kept ?? Buffer.from(change.summary(), 'utf8'),
    limits.ttlSeconds,
  ];
  const stored = await evalFenced(redis, STORE_SCRIPT, [key], args, fence);
  if (stored === 0) return 'fenced';
  return kept === null ? 'truncated' : 'kept';
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
