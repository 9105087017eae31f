import type { Cluster, Redis } from 'ioredis';
import type { PendingEvent } from './job-events.js';

/**
 * Writes a batch of one job's events. For each event, in order: XADD to the history under its
 * seq (`<seq>-0`; an id the stream already holds is an event written before, and is passed
 * over), then PUBLISH or SPUBLISH of its JSON, then EXPIRE where the event sets one. So any
 * event a subscriber missed is in the history by the time it could look.
 *
 * Two ways, the same commands. A few events (what a run printing at a human pace gives) go as
 * those commands in one pipeline: the cheapest for Redis. A batch of SCRIPT_FROM or more (a run
 * printing faster than Redis answers) goes as one script call: the client's own work per
 * command was most of what such a flood cost the worker, and the call's fixed cost in Redis is
 * shared by the batch. Measured with `npm run bench -- --redis-cost` (see docs/scaling.md): an
 * event alone cost Redis 127 µs of CPU in a pipeline and 175 µs in a script call.
 */
const SCRIPT_FROM = 16;

/**
 * ARGV: the publish command, the channel, the stream's MAXLEN, then for each event its id, its
 * JSON, its expiry in seconds (0: none), the number of its history fields, and those fields
 * and their values.
 */
const SCRIPT = `
local key = KEYS[1]
local publish, channel, maxLen = ARGV[1], ARGV[2], ARGV[3]
local at = 4
while at <= #ARGV do
  local last = at + 3 + 2 * tonumber(ARGV[at + 3])
  local added = redis.pcall('XADD', key, 'MAXLEN', '~', maxLen, ARGV[at], unpack(ARGV, at + 4, last))
  if type(added) == 'table' and added.err and not string.find(added.err, 'equal or smaller', 1, true) then
    return added
  end
  redis.call(publish, channel, ARGV[at + 1])
  if ARGV[at + 2] ~= '0' then redis.call('EXPIRE', key, ARGV[at + 2]) end
  at = last + 1
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

/** The connections the script is defined on (ioredis sends it by its hash, and once whole). */
const defined = new WeakSet<Connection>();

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
  if (script && replicas === undefined) {
    // Not in a pipeline, which would copy the whole batch once more into one buffer.
    await (withScript(redis) as unknown as Commands)[COMMAND](
      target.key,
      ...scriptArgs(target, batch),
    );
    return 0;
  }
  const pipeline = (script ? withScript(redis) : redis).pipeline() as unknown as Commands;
  if (script) pipeline[COMMAND](target.key, ...scriptArgs(target, batch));
  else for (const event of batch) queueCommands(pipeline, target, event);
  if (replicas !== undefined) pipeline.wait(replicas.count, replicas.timeoutMs);
  const results = await pipeline.exec();
  if (results === null) throw new Error('the connection closed before the batch was written');
  const failure = results.find(([error]) => error !== null && !isDuplicate(error))?.[0];
  if (failure) throw failure;
  return replicas === undefined ? 0 : Number(results.at(-1)?.[1] ?? 0);
}

function queueCommands(pipeline: Commands, target: BatchTarget, event: PendingEvent): void {
  pipeline.xadd(target.key, 'MAXLEN', '~', target.maxLen, `${event.seq}-0`, ...event.stored);
  if (target.sharded) pipeline.spublish(target.channel, event.json);
  else pipeline.publish(target.channel, event.json);
  if (event.expire !== undefined) pipeline.expire(target.key, event.expire);
}

/** The script's arguments for `batch`, after its key. */
function scriptArgs(target: BatchTarget, batch: readonly PendingEvent[]): Argument[] {
  const args: Argument[] = [target.sharded ? 'SPUBLISH' : 'PUBLISH', target.channel, target.maxLen];
  for (const event of batch) {
    args.push(`${event.seq}-0`, event.json, event.expire ?? 0, event.stored.length / 2);
    for (const value of event.stored) args.push(value);
  }
  return args;
}

/** A stream entry with this id is already there: the event was written before. */
function isDuplicate(error: Error): boolean {
  return error.message.includes('equal or smaller than the target stream top item');
}

function withScript(redis: Connection): Connection {
  if (!defined.has(redis)) {
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
    defined.add(redis);
  }
  return redis;
}
