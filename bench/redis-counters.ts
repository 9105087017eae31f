import type { Redis } from 'ioredis';

/** Redis's own running totals (INFO commandstats, stats and cpu). */
export interface RedisCounters {
  /** Commands executed, those called from Lua scripts included, INFO itself not. */
  readonly calls: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** used_cpu_sys + used_cpu_user of the server, in seconds. */
  readonly cpuSeconds: number;
}

export async function readCounters(redis: Redis): Promise<RedisCounters> {
  const info = (await redis.call('INFO', 'commandstats', 'stats', 'cpu')) as string;
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  let calls = 0;
  for (const [, command, count] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (command !== 'info') calls += Number(count);
  }
  return {
    calls,
    bytesIn: field('total_net_input_bytes'),
    bytesOut: field('total_net_output_bytes'),
    cpuSeconds: field('used_cpu_sys') + field('used_cpu_user'),
  };
}

/** The counters' growth from `before` to `after`, divided by `per` (events, jobs, seconds). */
export function perUnit(before: RedisCounters, after: RedisCounters, per: number): RedisCounters {
  return {
    calls: (after.calls - before.calls) / per,
    bytesIn: (after.bytesIn - before.bytesIn) / per,
    bytesOut: (after.bytesOut - before.bytesOut) / per,
    cpuSeconds: (after.cpuSeconds - before.cpuSeconds) / per,
  };
}

/**
 * What `work` cost Redis per unit of what it did: it returns its units (events, jobs, seconds)
 * and how many commands it sent itself only to watch (those are not the units' cost).
 */
export async function costOf(
  redis: Redis,
  work: () => Promise<{ units: number; ownCalls: number }>,
): Promise<RedisCounters> {
  const before = await readCounters(redis);
  const { units, ownCalls } = await work();
  const after = await readCounters(redis);
  return perUnit(before, { ...after, calls: after.calls - ownCalls }, units);
}
