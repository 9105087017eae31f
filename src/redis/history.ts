import type { Redis } from 'ioredis';
import {
  eventFromHistory,
  historyKey,
  type ExecuteEvent,
  type QueueAddress,
} from '../contract/index.js';

/**
 * Reading a job's event history, the Redis Stream the worker appends to. Entry ids are
 * `<seq>-0`, so "from seq N" is the stream range starting at id N.
 */

type StreamEntry = [id: string, fields: string[]];

const toEvent =
  (jobId: string) =>
  ([id, fields]: StreamEntry): ExecuteEvent | null =>
    eventFromHistory(jobId, id, fields);

/** Up to `count` events with seq >= fromSeq, in order. */
export async function readHistory(
  redis: Redis,
  address: QueueAddress,
  jobId: string,
  fromSeq: number,
  count: number,
): Promise<ExecuteEvent[]> {
  const entries = (await redis.xrange(
    historyKey(address, jobId),
    `${fromSeq}-0`,
    '+',
    'COUNT',
    count,
  )) as StreamEntry[];
  return entries.map(toEvent(jobId)).filter((event): event is ExecuteEvent => event !== null);
}

/** The newest event of a job, if its history still exists. */
export async function readLastEvent(
  redis: Redis,
  address: QueueAddress,
  jobId: string,
): Promise<ExecuteEvent | null> {
  const entries = (await redis.xrevrange(
    historyKey(address, jobId),
    '+',
    '-',
    'COUNT',
    1,
  )) as StreamEntry[];
  const newest = entries[0];
  return newest ? toEvent(jobId)(newest) : null;
}

/** The seq of the oldest event still kept (older ones were trimmed), or null when none is. */
export async function readFirstSeq(
  redis: Redis,
  address: QueueAddress,
  jobId: string,
): Promise<number | null> {
  const entries = (await redis.xrange(
    historyKey(address, jobId),
    '-',
    '+',
    'COUNT',
    1,
  )) as StreamEntry[];
  const oldest = entries[0];
  return oldest ? Number(oldest[0].split('-')[0]) : null;
}
