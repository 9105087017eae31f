/** Whether parsed JSON is an object with named fields (not null, not an array). */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * How deep parsed JSON may nest where the worker writes it again: far past any real answer, usage
 * record or schema, and short of what would overflow the stack of JSON.stringify (a few
 * thousand), which JSON.parse reads without complaint.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether `value` nests objects or arrays more than `limit` deep, found without recursion. */
export function nestsDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [node, depth] = next;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}
