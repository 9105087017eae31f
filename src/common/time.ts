/** The longest delay a timer takes: one past it would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The promise's value, or a rejection (`late()`'s error) saying nothing answered within `ms`.
 * Beyond what a timer can count (Infinity, say), it waits for the promise.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  late: () => Error = () => new Error(`no answer within ${ms} ms`),
): Promise<T> {
  if (ms > MAX_TIMER_MS) return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(late()), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the promise fulfils within `ms` (a rejection counts as not done). */
export async function doneWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return withTimeout(promise, ms).then(
    () => true,
    () => false,
  );
}
