import type { RedisClient } from './connections.js';
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

const seqOf = ([id]: StreamEntry): number => Number(id.split('-')[0]);

/** A page of a job's history. */
export interface HistoryPage {
  /** The events of the page's entries, in order; an entry that holds no event is left out. */
  readonly events: ExecuteEvent[];
  /** Where the next page starts; null when this one reached the end of the history. */
  readonly next: number | null;
  /** The seq of the page's first entry (event or not); null for an empty page. */
  readonly first: number | null;
}

/** The events of up to `count` entries with seq >= fromSeq, in order. */
export async function readHistory(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
  fromSeq: number,
  count: number,
): Promise<HistoryPage> {
  const entries = (await redis.xrange(
    historyKey(address, jobId),
    `${fromSeq}-0`,
    '+',
    'COUNT',
    count,
  )) as StreamEntry[];
  const events = entries
    .map(toEvent(jobId))
    .filter((event): event is ExecuteEvent => event !== null);
  // Paged by entries, not events: one that holds no event does not end the history early.
  const [oldest] = entries;
  const last = entries.at(-1);
  return {
    events,
    next: entries.length < count || last === undefined ? null : seqOf(last) + 1,
    first: oldest === undefined ? null : seqOf(oldest),
  };
}

/** The newest event of a job, if its history still exists. */
export async function readLastEvent(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
): Promise<ExecuteEvent | null> {
  return (await readNewest(redis, address, jobId)).event;
}

/**
 * The newest entry of a job's history: its seq, by its id, whatever it holds (0 where there is
 * none), and its event (null where it holds none).
 */
export async function readNewest(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
): Promise<{ readonly seq: number; readonly event: ExecuteEvent | null }> {
  const entries = (await redis.xrevrange(
    historyKey(address, jobId),
    '+',
    '-',
    'COUNT',
    1,
  )) as StreamEntry[];
  const newest = entries[0];
  if (newest === undefined) return { seq: 0, event: null };
  const seq = seqOf(newest);
  return { seq: Number.isSafeInteger(seq) ? seq : 0, event: toEvent(jobId)(newest) };
}

/** The seq of the oldest event still kept (older ones were trimmed), or null when none is. */
export async function readFirstSeq(
  redis: RedisClient,
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
  return oldest ? seqOf(oldest) : null;
}
