import type { Queue } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { listJobs, ListQuerySchema, MAX_CURSOR } from '../../../src/gateway/jobs.js';
import type { RedisClient } from '../../../src/redis/connections.js';

/** A queue of `count` waiting jobs, newest first, that records how far each read reached. */
function queueOf(count: number): { queue: Queue; ends: number[] } {
  const ends: number[] = [];
  const jobs = Array.from({ length: count }, (_, index) => ({
    id: `job-${index}`,
    timestamp: count - index,
    data: { prompt: 'hi' },
    progress: 0,
  }));
  const getJobs = (states: string[], start: number, end: number) => {
    ends.push(end);
    return Promise.resolve(states[0] === 'waiting' ? jobs.slice(start, end + 1) : []);
  };
  const getJobCounts = (...states: string[]) =>
    Promise.resolve(Object.fromEntries(states.map((s) => [s, s === 'waiting' ? count : 0])));
  return { queue: { getJobs, getJobCounts } as unknown as Queue, ends };
}

const query = (raw: Record<string, string>) => ListQuerySchema.parse(raw);

describe('a page of the job list', () => {
  it('reads no further back than MAX_CURSOR and one page, however many jobs Redis keeps', async () => {
    const { queue, ends } = queueOf(MAX_CURSOR + 500);
    const last = await listJobs(
      queue,
      {} as RedisClient,
      query({ cursor: String(MAX_CURSOR), limit: '100' }),
    );
    expect(last.jobs).toHaveLength(100);
    expect(last.nextCursor).toBeNull();
    expect(Math.max(...ends)).toBeLessThanOrEqual(MAX_CURSOR + 100);
  });

  it('offers no cursor it would then refuse', async () => {
    const { queue } = queueOf(MAX_CURSOR + 500);
    const before = await listJobs(
      queue,
      {} as RedisClient,
      query({ cursor: String(MAX_CURSOR - 20), limit: '20' }),
    );
    expect(before.nextCursor).toBe(String(MAX_CURSOR));
    const past = await listJobs(
      queue,
      {} as RedisClient,
      query({ cursor: String(MAX_CURSOR - 10), limit: '20' }),
    );
    expect(past.nextCursor).toBeNull();
  });
});
