import type { Logger } from 'pino';
import { withTimeout } from '../../common/time.js';

/** The longest one part may take to close. */
const CLOSE_MS = 10_000;
/** The same, when Redis is known to be away: what still waits on it will not get an answer. */
const CLOSE_WITHOUT_REDIS_MS = 1000;

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

  /**
   * Closes everything, last added first; one that fails, or takes too long (it waits on a
   * Redis that is away, say), is logged and the rest go on.
   */
  async closeAll(logger: Logger, redisAway = false): Promise<void> {
    const limit = redisAway ? CLOSE_WITHOUT_REDIS_MS : CLOSE_MS;
    for (const { name, close } of this.closers.splice(0).reverse()) {
      try {
        await withTimeout(Promise.resolve().then(close), limit);
      } catch (error) {
        logger.warn({ err: error, part: name }, 'could not close a part of the worker');
      }
    }
  }
}
