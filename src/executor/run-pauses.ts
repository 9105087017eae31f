/**
 * Spells in which the worker itself holds a run stopped (a look at its checkout, with every
 * process of the run SIGSTOPped): what the run does not print meanwhile is not its idleness.
 */
export class RunPauses {
  private readonly listeners = new Set<(paused: boolean) => void>();
  private depth = 0;

  /** Runs `step` as a pause of the run. */
  async during<T>(step: () => Promise<T>): Promise<T> {
    if (++this.depth === 1) this.tell(true);
    try {
      return await step();
    } finally {
      if (--this.depth === 0) this.tell(false);
    }
  }

  /** Whether a pause goes on now. */
  get paused(): boolean {
    return this.depth > 0;
  }

  /** Hears each pause begin (true) and end (false); returns how to stop listening. */
  listen(listener: (paused: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(paused: boolean): void {
    for (const listener of this.listeners) listener(paused);
  }
}
