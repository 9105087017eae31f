import { redactIn, redactUrl } from '../config/config.js';
import { probeRedis } from '../redis/connections.js';

/** Long enough for a Redis across a network, short enough that a wrong address is soon told. */
const REDIS_PROBE_MS = 4000;

/**
 * Why the Redis at REDIS_URL cannot be used, as one line, or null when it answers. Commands
 * probe first because their connections wait through outages, which would make a wrong
 * REDIS_URL look like a command that hangs.
 */
export async function redisProblem(url: string): Promise<string | null> {
  const unreachable = await probeRedis(url, REDIS_PROBE_MS);
  return unreachable === null
    ? null
    : `cannot reach Redis at ${redactUrl(url)} (REDIS_URL): ${redactIn(unreachable, url)}`;
}
