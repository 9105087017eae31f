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

/**
 * Whether parsed JSON holds more than `limit` values (objects and arrays, and everything in
 * them), counted without recursion and no further than that.
 */
export function holdsMoreThan(value: unknown, limit: number): boolean {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (++count > limit) return true;
    if (typeof node !== 'object' || node === null) continue;
    for (const key in node) {
      stack.push((node as Record<string, unknown>)[key]);
      if (stack.length + count > limit) return true;
    }
  }
  return false;
}
