import type { Logger } from 'pino';

/**
 * What a worker started, to be stopped in the opposite order: the same list serves a start
 * that fails halfway (only what was started is stopped) and a shutdown.
 */
export class Closers {
  private readonly closers: { readonly name: string; readonly close: () => Promise<unknown> }[] =
    [];

  add(name: string, close: () => Promise<unknown>): void {
    this.closers.push({ name, close });
  }

  /** Closes everything, last added first; one that fails is logged and the rest go on. */
  async closeAll(logger: Logger): Promise<void> {
    for (const { name, close } of this.closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        logger.warn({ err: error, part: name }, 'could not close a part of the worker');
      }
    }
  }
}
