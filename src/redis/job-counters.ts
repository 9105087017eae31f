import type { RedisClient } from './connections.js';

/**
 * BullMQ's counters of a job (attempts made, attempts started, stalls), which its scripts add to
 * with HINCRBY. One that is no whole number (written by something other than BullMQ) fails such
 * a script midway: the job ends in no list, or is taken, put back and taken again for ever.
 */
const COUNTERS = ['atm', 'ats', 'stc'] as const;

/** What HINCRBY takes and BullMQ reads back alike: digits, no leading zero, a safe integer. */
const WHOLE = /^(?:0|[1-9]\d{0,14})$/;

/** The counters a job object carries, as BullMQ read them. */
export interface JobCounters {
  attemptsMade: number;
  attemptsStarted: number;
  stalledCounter: number;
}

const FIELD_OF: Record<(typeof COUNTERS)[number], keyof JobCounters> = {
  atm: 'attemptsMade',
  ats: 'attemptsStarted',
  stc: 'stalledCounter',
};

/** Whether `error` is a script of BullMQ's that failed on a job's counter (see COUNTERS). */
export function isCounterError(error: unknown): boolean {
  return (
    error instanceof Error &&
    /hash value is not an integer|increment or decrement would overflow/.test(error.message)
  );
}

/**
 * Sets each counter of the job at `jobKey` that is no whole number to 0, in Redis and in `job`,
 * so that BullMQ's scripts can end the job; says which were and what they held, or null.
 */
export async function repairCounters(
  redis: RedisClient,
  jobKey: string,
  job: JobCounters,
): Promise<string | null> {
  const values = await redis.hmget(jobKey, ...COUNTERS);
  const bad = COUNTERS.flatMap((name, at) => {
    const value = values[at];
    return value === null || value === undefined || WHOLE.test(value) ? [] : [{ name, value }];
  });
  if (bad.length === 0) return null;
  await redis.hset(jobKey, ...bad.flatMap(({ name }) => [name, '0']));
  for (const { name } of bad) job[FIELD_OF[name]] = 0;
  const held = bad.map(({ name, value }) => `its ${name} (${JSON.stringify(value.slice(0, 40))})`);
  return `${held.join(', ')} ${bad.length === 1 ? 'is' : 'are'} no whole number, where BullMQ counts the job's attempts`;
}
