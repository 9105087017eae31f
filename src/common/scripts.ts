/** A connection that can carry a Lua script as a command of its own (an ioredis Redis or Cluster). */
interface Scriptable {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
}

/** The commands defined on each connection (ioredis sends a script by its hash, and once whole). */
const defined = new WeakMap<Scriptable, Set<string>>();

/** `redis`, with the Lua script `lua` of one key defined on it as the command `name`, once. */
export function withScript<T extends Scriptable>(redis: T, name: string, lua: string): T {
  const names = defined.get(redis) ?? new Set<string>();
  if (!names.has(name)) {
    redis.defineCommand(name, { numberOfKeys: 1, lua });
    names.add(name);
    defined.set(redis, names);
  }
  return redis;
}
