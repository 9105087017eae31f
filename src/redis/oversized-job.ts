import { constants } from 'node:buffer';
import { raw2NextJobData, type Job } from 'bullmq';

/**
 * The longest string Node.js makes. ioredis makes one of each field of a reply, and Redis holds
 * fields of up to 512 MB (more where `proto-max-bulk-len` is raised): a job whose hash holds a
 * longer one throws wherever BullMQ reads it whole.
 */
export const LONGEST_STRING = constants.MAX_STRING_LENGTH;

/** Whether `error` is Node.js refusing to make a string of a reply that long. */
export function isTooLongToRead(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ERR_STRING_TOO_LONG';
}

/** Where a job read field by field says which fields it left out, and why. */
export const LEFT_OUT = Symbol('fields left out');

/** What BullMQ's fromJSON takes: a job's fields as BullMQ decodes them. */
export type JobFields = Parameters<typeof Job.fromJSON>[1] & { [LEFT_OUT]?: string };

/** The commands the reading needs, as BullMQ's client for a queue offers them. */
interface FieldReader {
  runCommand(name: string, args: unknown[]): Promise<unknown>;
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
  get(key: string): Promise<string | null>;
  lrange(key: string, start: number, end: number): Promise<string[]>;
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

/**
 * Job `jobId` of `queue` read one field at a time, leaving out each field too long for a string
 * (named under LEFT_OUT, with its size); undefined where there is no such job. Only the lengths
 * of those fields cross the connection, never their bytes.
 */
export async function readJobLeavingOut(
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
  const tooLong = names.filter((_, at) => (lengths[at] ?? 0) > LONGEST_STRING);
  const kept = names.filter((name) => !tooLong.includes(name));
  const values = kept.length > 0 ? await redis.hmget(key, ...kept) : [];
  const flat = kept.flatMap((name, at) => [name, values[at] ?? '']);
  const [fields] = raw2NextJobData([flat]) as [JobFields];
  if (tooLong.length > 0) {
    const sizes = tooLong.map((name) => `its ${name} is ${lengths[names.indexOf(name)]} bytes`);
    fields[LEFT_OUT] =
      `${sizes.join(', ')}: more than the worker can read (${LONGEST_STRING} at most)`;
  }
  return fields;
}

/** The id of the job of `queue` in its active list whose lock is `token`, if there is one. */
export async function activeJobLockedBy(
  queue: QueueLike,
  token: string,
): Promise<string | undefined> {
  const redis = await readerOf(queue);
  const ids = await redis.lrange(queue.toKey('active'), 0, -1);
  const locks = await Promise.all(ids.map((id) => redis.get(`${queue.toKey(id)}:lock`)));
  return ids.find((_, at) => locks[at] === token);
}
