import type { Cluster, Redis } from 'ioredis';
import type { PendingEvent } from './job-events.js';

/**
 * Writes a batch of one job's events in one command. For each event, in order: XADD to the
 * history under its seq (`<seq>-0`; an id the stream already holds is an event written before,
 * and is passed over), then PUBLISH or SPUBLISH of its JSON, then EXPIRE where the event sets
 * one. So any event a subscriber missed is in the history by the time it could look.
 *
 * One script call a batch, where a pipeline took two or three commands an event: the client's
 * own work per command was most of what publishing cost the worker.
 *
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
type WithScript = Connection & {
  [COMMAND](key: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
};

/** The connections the script is defined on (ioredis sends it by its hash, and once whole). */
const defined = new WeakSet<Connection>();

export interface BatchTarget {
  /** The job's history stream. */
  readonly key: string;
  readonly channel: string;
  readonly sharded: boolean;
  readonly maxLen: number;
}

/** The command's arguments for `batch`, after the key. */
function argumentsFor(target: BatchTarget, batch: readonly PendingEvent[]) {
  const args: (string | number | Buffer)[] = [
    target.sharded ? 'SPUBLISH' : 'PUBLISH',
    target.channel,
    target.maxLen,
  ];
  for (const event of batch) {
    args.push(`${event.seq}-0`, event.json, event.expire ?? 0, event.stored.length / 2);
    for (const value of event.stored) args.push(value);
  }
  return args;
}

/** Writes `batch`; rejects with Redis's error when the batch could not be written. */
export async function writeBatch(
  redis: Connection,
  target: BatchTarget,
  batch: readonly PendingEvent[],
): Promise<void> {
  await withScript(redis)[COMMAND](target.key, ...argumentsFor(target, batch));
}

/**
 * `batch` and then WAIT for `replicas`, in one round trip: how many replicas have it, or a
 * rejection with Redis's error when the batch could not be written.
 */
export async function writeBatchAndWait(
  redis: Connection,
  target: BatchTarget,
  batch: readonly PendingEvent[],
  replicas: { readonly count: number; readonly timeoutMs: number },
): Promise<number> {
  const pipeline = withScript(redis).pipeline() as unknown as {
    [COMMAND](key: string, ...args: (string | number | Buffer)[]): void;
    wait(count: number, timeoutMs: number): void;
    exec(): Promise<[Error | null, unknown][] | null>;
  };
  pipeline[COMMAND](target.key, ...argumentsFor(target, batch));
  pipeline.wait(replicas.count, replicas.timeoutMs);
  const results = await pipeline.exec();
  if (results === null) throw new Error('the connection closed before the batch was written');
  const failure = results.find(([error]) => error !== null)?.[0];
  if (failure) throw failure;
  return Number(results[1]?.[1] ?? 0);
}

function withScript(redis: Connection): WithScript {
  if (!defined.has(redis)) {
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
    defined.add(redis);
  }
  return redis as WithScript;
}
