/**
 * Where claudebox keeps things in Redis besides BullMQ's own keys. `prefix` is BullMQ's key prefix
 * (QUEUE_PREFIX, "bull" by default), so everything of a queue shares one namespace.
 */
export interface QueueAddress {
  readonly prefix: string;
  readonly queueName: string;
}

/**
 * Pub/sub channel of a job's live events, PUBLISHed or SPUBLISHed (see PubSubMode). It carries
 * the prefix as every key of the queue does: deployments that share a Redis and a queue name
 * under different prefixes number their jobs alike, and must not hear each other's runs. It
 * starts with the queue's hash tag, so on a Redis Cluster SPUBLISH keeps it on the shard that
 * holds the job's history.
 */
export function eventChannel({ prefix, queueName }: QueueAddress, jobId: string): string {
  return `${prefix}:${queueName}:events:${jobId}`;
}

/**
 * The names of the keys BullMQ keeps for a queue itself (`<prefix>:<queue>:<name>`). A job's
 * hash is `<prefix>:<queue>:<jobId>`: a job given one of these ids would be written over the
 * queue's own lists and streams, and no job of the queue could be added or finish after it.
 */
export const BULLMQ_QUEUE_KEYS: ReadonlySet<string> = new Set([
  'active',
  'wait',
  'waiting-children',
  'paused',
  'id',
  'delayed',
  'prioritized',
  'stalled-check',
  'completed',
  'failed',
  'stalled',
  'repeat',
  'limiter',
  'meta',
  'events',
  'pc',
  'marker',
  'de',
]);

/** BullMQ's hash of job `jobId`. */
export function jobKey({ prefix, queueName }: QueueAddress, jobId: string): string {
  return `${prefix}:${queueName}:${jobId}`;
}

/** Redis Stream holding a job's events for replay; entry ids are `<seq>-0`. */
export function historyKey({ prefix, queueName }: QueueAddress, jobId: string): string {
  return `${prefix}:${queueName}:history:${jobId}`;
}

/** Set when a job is cancelled; a worker that takes the job afterwards fails it at once. */
export function cancelKey({ prefix, queueName }: QueueAddress, jobId: string): string {
  return `${prefix}:${queueName}:cancel:${jobId}`;
}

/** Pub/sub channel every worker of a queue listens on for cancellations. */
export function controlChannel(queueName: string): string {
  return `${queueName}:control`;
}

/**
 * A Claude session's transcript, so a retry on another machine can resume it: a hash with its
 * byte count, and `<key>:data` with the transcript (gzip). Sessions of a `sessionScope` live
 * apart from every other scope's; the default scope (none given) has no scope part.
 */
export function sessionKey(
  { prefix, queueName }: QueueAddress,
  sessionId: string,
  scope = '',
): string {
  const scoped = scope === '' ? '' : `scope:${scope}:`;
  return `${prefix}:${queueName}:session:${scoped}${sessionId}`;
}

/**
 * The part of a key Redis Cluster hashes to pick its slot: what is between the first `{` and the
 * first `}` after it, when that is not empty; null when the whole key is hashed.
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  return close <= open + 1 ? null : key.slice(open + 1, close);
}

/**
 * The hash tag every key of the queue shares (BullMQ's and ours all start with
 * `<prefix>:<queueName>:`), or null when they are spread over slots.
 */
export function queueHashTag({ prefix, queueName }: QueueAddress): string | null {
  return hashTag(`${prefix}:${queueName}:`);
}

/** How live events are published: PUBLISH (to every node of a cluster) or SPUBLISH. */
export type PubSubMode = 'plain' | 'sharded';

/**
 * The change a job made in its workspace: a hash with the patch (`git diff --binary`), its base
 * commit, its size and whether only a summary of it was kept.
 */
export function patchKey({ prefix, queueName }: QueueAddress, jobId: string): string {
  return `${prefix}:${queueName}:patch:${jobId}`;
}
