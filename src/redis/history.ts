import type { RedisClient } from './connections.js';
import { withScript } from '../common/scripts.js';
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

/**
 * The events of up to `count` entries with seq >= fromSeq, in order; with `maxBytes`, only as
 * many as fit in it (the first entry always, however long): a reader holds a page while its
 * consumer takes the events one by one, and a run's lines may be megabytes each.
 */
export async function readHistory(
  redis: RedisClient,
  address: QueueAddress,
  jobId: string,
  fromSeq: number,
  count: number,
  maxBytes = Infinity,
): Promise<HistoryPage> {
  const key = historyKey(address, jobId);
  const from = `${fromSeq}-0`;
  const [entries, cut] =
    maxBytes === Infinity
      ? [(await redis.xrange(key, from, '+', 'COUNT', count)) as StreamEntry[], 0]
      : await withPageScript(redis)[PAGE_COMMAND](key, from, count, maxBytes);
  const events = entries
    .map(toEvent(jobId))
    .filter((event): event is ExecuteEvent => event !== null);
  // Paged by entries, not events: one that holds no event does not end the history early.
  const [oldest] = entries;
  const last = entries.at(-1);
  return {
    events,
    next: (entries.length < count && cut === 0) || last === undefined ? null : seqOf(last) + 1,
    first: oldest === undefined ? null : seqOf(oldest),
  };
}

/**
 * XRANGE that stops once the entries' fields pass ARGV[3] bytes, keeping the first entry
 * whatever its size; the reply's second element is 1 where it stopped so. It asks XRANGE for
 * as many entries as the bytes left seem to hold, going by the entries so far: one XRANGE of
 * the whole COUNT would copy every entry inside Redis, which blocks it, however few the page
 * keeps (500 entries of a megabyte for a page of one). Ids are "<seq>-0", so the next range
 * starts at the last id's sequence part plus one.
 */
const PAGE_SCRIPT = `
local key, from = KEYS[1], ARGV[1]
local count, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local page, used, want = {}, 0, 1
while #page < count do
  local entries = redis.call('XRANGE', key, from, '+', 'COUNT', want)
  for _, entry in ipairs(entries) do
    for _, value in ipairs(entry[2]) do used = used + #value end
    if used > budget and #page > 0 then return {page, 1} end
    page[#page + 1] = entry
  end
  if #entries < want then return {page, 0} end
  if used >= budget then return {page, 1} end
  local ms, n = string.match(entries[#entries][1], '^(%d+)-(%d+)$')
  from = ms .. '-' .. (tonumber(n) + 1)
  local left = math.floor((budget - used) / (used / #page))
  want = math.max(1, math.min(count - #page, left + 1))
end
return {page, 0}
`;

const PAGE_COMMAND = 'claudeboxHistoryPage';

type PageCommand = (
  key: string,
  from: string,
  count: number,
  maxBytes: number,
) => Promise<[StreamEntry[], 0 | 1]>;

function withPageScript(
  redis: RedisClient,
): RedisClient & Record<typeof PAGE_COMMAND, PageCommand> {
  return withScript(redis, PAGE_COMMAND, PAGE_SCRIPT) as RedisClient &
    Record<typeof PAGE_COMMAND, PageCommand>;
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
