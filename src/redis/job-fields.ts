import { constants } from 'node:buffer';
import { raw2NextJobData, type Job } from 'bullmq';
import { lockKeyOf } from './write-fence.js';

/**
 * The longest string Node.js makes. ioredis makes one of each field of a reply, and Redis holds
 * fields of up to 512 MB (more where `proto-max-bulk-len` is raised): a job whose hash holds a
 * longer one throws wherever BullMQ reads it whole.
 */
export const LONGEST_STRING = constants.MAX_STRING_LENGTH;

/**
 * Whether `error` is BullMQ failing to make a job of what Redis answered, rather than Redis
 * failing: a field too long for a string, or one that does not decode (`opts` that are not
 * JSON, say), as something other than BullMQ can write them.
 */
export function isUnreadableJob(error: unknown): boolean {
  const tooLong = error instanceof Error && 'code' in error && error.code === 'ERR_STRING_TOO_LONG';
  return tooLong || error instanceof SyntaxError || error instanceof TypeError;
}

/** Where a job read field by field says which fields it left out, and why. */
export const LEFT_OUT = Symbol('fields left out');

export interface LeftOut {
  readonly names: readonly string[];
  readonly reason: string;
}

/** What BullMQ's fromJSON takes: a job's fields as BullMQ decodes them. */
export type JobFields = Parameters<typeof Job.fromJSON>[1] & { [LEFT_OUT]?: LeftOut };

/** The commands the reading needs, as BullMQ's client for a queue offers them. */
interface FieldReader {
  runCommand(name: string, args: unknown[]): Promise<unknown>;
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  get(key: string): Promise<string | null>;
  lrange(key: string, start: number, end: number): Promise<string[]>;
  hdel(key: string, ...fields: string[]): Promise<number>;
}

/** A queue or worker of BullMQ's, as far as the reading needs it. */
interface QueueLike {
  readonly backend: unknown;
  toKey(type: string): string;
}

async function readerOf(queue: QueueLike): Promise<FieldReader> {
  const client = (queue.backend as { client?: Promise<FieldReader> }).client;
  if (client === undefined) throw new Error('the queue has no Redis client to read a job with');
  return client;
}

/** Why BullMQ cannot decode `value` as the job field `name`, or null where it can. */
function undecodable(name: string, value: string): string | null {
  try {
    raw2NextJobData([[name, value]]);
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Job `jobId` of `queue` read one field at a time, leaving out each field too long for a string
 * or that does not decode (named under LEFT_OUT, with why); undefined where there is no such job.
 * Only the lengths of the fields too long cross the connection, never their bytes.
 */
export async function readJobFieldByField(
  queue: QueueLike,
  jobId: string,
): Promise<JobFields | undefined> {
  const redis = await readerOf(queue);
  const key = queue.toKey(jobId);
  const names = (await redis.runCommand('hkeys', [key])) as string[];
  if (names.length === 0) return undefined;
  const lengths = (await Promise.all(
    names.map((name) => redis.runCommand('hstrlen', [key, name])),
  )) as number[];
  const left: string[] = [];
  const why: string[] = [];
  const fitting = names.filter((name, at) => {
    const bytes = lengths[at] ?? 0;
    if (bytes <= LONGEST_STRING) return true;
    left.push(name);
    why.push(
      `its ${name} is ${bytes} bytes: more than the worker can read (${LONGEST_STRING} at most)`,
    );
    return false;
  });
  const values = fitting.length > 0 ? await redis.hmget(key, ...fitting) : [];
  const flat = fitting.flatMap((name, at) => {
    const value = values[at] ?? '';
    const problem = undecodable(name, value);
    if (problem === null) return [name, value];
    left.push(name);
    why.push(`its ${name} cannot be read (${problem})`);
    return [];
  });
  const [fields] = raw2NextJobData([flat]) as [JobFields];
  if (left.length > 0) fields[LEFT_OUT] = { names: left, reason: why.join('; ') };
  return fields;
}

/**
 * BullMQ's scripts decode a job's `parent` to end the job, and where it does not decode they fail
 * after taking the job's lock, so that the job could never end: a worker that is to end such a
 * job removes that field first (the job keeps `parentKey`, which those scripts read as it is).
 */
export async function removeUnreadableParent(
  queue: QueueLike,
  jobId: string,
  leftOut: LeftOut,
): Promise<void> {
  if (!leftOut.names.includes('parent')) return;
  await (await readerOf(queue)).hdel(queue.toKey(jobId), 'parent');
}

/** The id of the job of `queue` in its active list whose lock is `token`, if there is one. */
export async function activeJobLockedBy(
  queue: QueueLike,
  token: string,
): Promise<string | undefined> {
  const redis = await readerOf(queue);
  const ids = await redis.lrange(queue.toKey('active'), 0, -1);
  const locks = await Promise.all(ids.map((id) => redis.get(lockKeyOf(queue.toKey(id)))));
  return ids.find((_, at) => locks[at] === token);
}
