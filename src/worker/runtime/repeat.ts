/**
 * Runs `once` every `everyMs` after its last run ended, one run at a time, until stopped: the
 * first run at once where `now`, else `everyMs` from now; `once` handles its own errors. Returns
 * the stop, which waits for a run under way.
 */
export function repeatEvery(
  once: () => Promise<void>,
  everyMs: number,
  { now = false }: { readonly now?: boolean } = {},
): () => Promise<void> {
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const run = (): void => {
    running = once().then(() => {
      if (!stopped) later();
    });
  };
  const later = (): void => {
    timer = setTimeout(run, everyMs);
    // Shutdown does not wait for the next one.
    timer.unref();
  };
  if (now) run();
  else later();
  return async () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    await running;
  };
}
