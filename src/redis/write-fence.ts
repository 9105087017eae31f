import type { RedisClient } from './connections.js';

/**
 * The job's lock, which must still hold the attempt's token for a write of the attempt's to land.
 * A write sent just before the lock lapsed (the worker cut off from Redis, or frozen) may reach
 * Redis after the next attempt went on with the job: it would then overwrite what that attempt
 * restored or stored (a session's transcript, the workspace's patch).
 */
export interface WriteFence {
  readonly lockKey: string;
  readonly token: string;
}

/** BullMQ's lock of the job whose hash is `jobKey` (`<prefix>:<queue>:<id>`). */
export function lockKeyOf(jobKey: string): string {
  return `${jobKey}:lock`;
}

/**
 * The Lua line a fenced script starts with: it returns `refused` unless the key `KEYS[k]`, when
 * given, holds `ARGV[a]`. A script called without the fence's key writes unfenced.
 */
export function fenceCheck(k: number, a: number, refused: string): string {
  return `if KEYS[${k}] and redis.call('GET', KEYS[${k}]) ~= ARGV[${a}] then return ${refused} end`;
}

/**
 * Runs `script` with `keys` and `args`, then the fence's lock key and its token, where there is a
 * fence: its fenceCheck names the lock key as the key after `keys`, the token as the last argument.
 */
export async function evalFenced(
  redis: RedisClient,
  script: string,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
  fence: WriteFence | undefined,
): Promise<number> {
  const all = fence === undefined ? keys : [...keys, fence.lockKey];
  return (await redis.eval(script, all.length, ...all, ...args, fence?.token ?? '')) as number;
}
