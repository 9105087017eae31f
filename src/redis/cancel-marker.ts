import type { RedisClient } from './connections.js';
import { cancelKey, CancelMarkerSchema, type QueueAddress } from '../contract/index.js';

/** Why a job was cancelled, if its cancellation marker is there. */
export async function readCancelReason(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
): Promise<string | null> {
  const raw = await redis.get(cancelKey(address, jobId));
  if (raw === null) return null;
  try {
    return CancelMarkerSchema.parse(JSON.parse(raw)).reason;
  } catch {
    return raw;
  }
}
