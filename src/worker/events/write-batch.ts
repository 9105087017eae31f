import type { Cluster, Redis } from 'ioredis';
import type { PendingEvent } from './job-events.js';
import { withScript } from '../../common/scripts.js';

/**
 * Writes a batch of one job's events. For each event, in order: XADD to the history under its
 * seq (`<seq>-0`; an id the stream already holds is an event written before, and is passed
 * over), then PUBLISH or SPUBLISH of its JSON, then EXPIRE where the event sets one. So any
 * event a subscriber missed is in the history by the time it could look.
 *
 * Two ways, the same commands. A few events (what a run printing at a human pace gives) go as
 * those commands, one after another on the connection: the cheapest for Redis. A batch of
 * SCRIPT_FROM or more (a run printing faster than Redis answers) goes as one script call: the
 * client's own work per command was most of what such a flood cost the worker, and the call's
 * fixed cost in Redis is shared by the batch. Measured with `npm run bench -- --redis-cost` (see
 * docs/scaling.md): an event alone cost Redis 127 µs of CPU as commands and 175 µs in a script
 * call.
 *
 * The commands are not wrapped in a client pipeline: on one connection they keep their order
 * anyway, and they go out in one socket write all the same (see inOneWrite). ioredis builds a
 * pipeline object of its own for each, and at a line a millisecond those outlived two
 * young-generation collections, so every collection copied megabytes of them and stalled the
 * event loop for 10-17 ms (see docs/scaling.md, latency).
 */
const SCRIPT_FROM = 16;

/**
 * ARGV: the publish command, the channel, the stream's MAXLEN, the attempt of the batch's lines,
 * then each event as a shape and its values:
 * - `stdout` or `stderr`, a line of that attempt: its id, its JSON, its time, its content (the
 *   entry's fields are then attempt, time and the stream, as historyFields makes them);
 * - `entry`, any other event: its id, its JSON, its expiry in seconds (0: none), the number of
 *   its history fields, and those fields and their values.
 * Lines are nearly all of a flood, and their short shape is what makes the call cheap: Redis's
 * cost of a script call grows with its arguments more than with anything the script does.
 * An id the stream holds already is an event written before (a batch sent again): it is passed
 * over, and published again.
 */
const SCRIPT = `
local key = KEYS[1]
local publish, channel, maxLen, attempt = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function add(id, ...)
  local added = redis.pcall('XADD', key, 'MAXLEN', '~', maxLen, id, ...)
  if type(added) == 'table' and added.err and not string.find(added.err, 'equal or smaller', 1, true) then
    error(added)
  end
end
local at = 5
while at <= #ARGV do
  local shape, id, json = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  if shape == 'entry' then
    local last = at + 4 + 2 * ARGV[at + 4]
    add(id, unpack(ARGV, at + 5, last))
    redis.call(publish, channel, json)
    if ARGV[at + 3] ~= '0' then redis.call('EXPIRE', key, ARGV[at + 3]) end
    at = last + 1
  else
    add(id, 'attempt', attempt, 'time', ARGV[at + 3], shape, ARGV[at + 4])
    redis.call(publish, channel, json)
    at = at + 5
  end
end
return #ARGV
`;

const COMMAND = 'claudeboxWriteEvents';

type Connection = Redis | Cluster;
type Argument = string | number | Buffer;
type Results = [Error | null, unknown][] | null;

/** The pipeline's commands this file sends, its script among them once defined. */
interface Commands {
  xadd(key: string, ...args: Argument[]): unknown;
  publish(channel: string, message: Argument): unknown;
  spublish(channel: string, message: Argument): unknown;
  expire(key: string, seconds: number): unknown;
  wait(replicas: number, timeoutMs: number): unknown;
  [COMMAND](key: string, ...args: Argument[]): unknown;
  exec(): Promise<Results>;
}

export interface BatchTarget {
  /** The job's history stream. */
  readonly key: string;
  readonly channel: string;
  readonly sharded: boolean;
  readonly maxLen: number;
}

/** How many replicas must have the batch, and how long to wait for them. */
export interface Replicas {
  readonly count: number;
  readonly timeoutMs: number;
}

/**
 * Writes `batch`, then waits for `replicas` where given, in one round trip: how many replicas
 * have it (0 without `replicas`), or a rejection with Redis's error when it could not be
 * written.
 */
export async function writeBatch(
  redis: Connection,
  target: BatchTarget,
  batch: readonly PendingEvent[],
  replicas?: Replicas,
): Promise<number> {
  const script = batch.length >= SCRIPT_FROM;
  // A cluster sends a keyless PUBLISH to any of its nodes: there the commands go in a pipeline,
  // which goes whole to the history's node, so that each PUBLISH follows its XADD.
  if (replicas === undefined && (script || !redis.isCluster)) {
    const connection = (script ? withScript(redis, COMMAND, SCRIPT) : redis) as unknown as Commands;
    const sendAll = () => batch.flatMap((event) => send(connection, target, event));
    if (script) await connection[COMMAND](target.key, ...scriptArgs(target, batch));
    else await answers(inOneWrite(redis, sendAll));
    return 0;
  }
  // WAIT counts the replicas that have everything the connection wrote before it: it goes last,
  // and its answer is the batch's.
  const pipeline = (script
    ? withScript(redis, COMMAND, SCRIPT)
    : redis
  ).pipeline() as unknown as Commands;
  if (script) pipeline[COMMAND](target.key, ...scriptArgs(target, batch));
  else for (const event of batch) send(pipeline, target, event);
  if (replicas !== undefined) pipeline.wait(replicas.count, replicas.timeoutMs);
  const results = await pipeline.exec();
  if (results === null) throw new Error('the connection closed before the batch was written');
  const failure = results.find(([error]) => error !== null && !isDuplicate(error))?.[0];
  if (failure) throw failure;
  return replicas === undefined ? 0 : Number(results.at(-1)?.[1] ?? 0);
}

/** Sends an event's commands on `to` (a connection or a pipeline): what each call returned. */
function send(to: Commands, target: BatchTarget, event: PendingEvent): unknown[] {
  return [
    to.xadd(target.key, 'MAXLEN', '~', target.maxLen, `${event.seq}-0`, ...event.stored),
    target.sharded
      ? to.spublish(target.channel, event.json)
      : to.publish(target.channel, event.json),
    ...(event.expire === undefined ? [] : [to.expire(target.key, event.expire)]),
  ];
}

/**
 * Calls `sendAll` with the connection's socket corked, so that what it sends goes out in one
 * write: a worker killed between two writes would leave an event in the history that was never
 * published, which a subscriber then never sees live.
 */
function inOneWrite<T>(redis: Connection, sendAll: () => T): T {
  const socket = redis.isCluster ? undefined : (redis as Redis).stream;
  socket?.cork();
  try {
    return sendAll();
  } finally {
    socket?.uncork();
  }
}

/**
 * Waits for every command's answer, so that a batch counts as on its way until none is (see
 * JobEvents.discard); throws the first error, where an entry written before counts as written.
 */
async function answers(sent: readonly unknown[]): Promise<void> {
  const settled = await Promise.allSettled(sent as readonly Promise<unknown>[]);
  for (const answer of settled) {
    if (answer.status === 'fulfilled') continue;
    const error: unknown = answer.reason;
    if (!(error instanceof Error && isDuplicate(error))) throw error;
  }
}

/** The script's arguments for `batch`, after its key. */
function scriptArgs(target: BatchTarget, batch: readonly PendingEvent[]): Argument[] {
  const attempt = batch.find(isLine)?.stored[1] ?? 0;
  const args: Argument[] = [
    target.sharded ? 'SPUBLISH' : 'PUBLISH',
    target.channel,
    target.maxLen,
    attempt,
  ];
  for (const event of batch) {
    const id = `${event.seq}-0`;
    const { stored } = event;
    if (isLine(event) && stored[1] === attempt) {
      args.push(
        stored[4] as Argument,
        id,
        event.json,
        stored[3] as Argument,
        stored[5] as Argument,
      );
      continue;
    }
    args.push('entry', id, event.json, event.expire ?? 0, stored.length / 2, ...stored);
  }
  return args;
}

/**
 * A line with no more than the fields every line has (historyFields: attempt, time, then its
 * stream and its content), and no expiry: what the script's short shape writes.
 */
function isLine(event: PendingEvent): boolean {
  const { stored } = event;
  return stored.length === 6 && stored[0] === 'attempt' && event.expire === undefined;
}

/** A stream entry with this id is already there: the event was written before. */
function isDuplicate(error: Error): boolean {
  return error.message.includes('equal or smaller than the target stream top item');
}
