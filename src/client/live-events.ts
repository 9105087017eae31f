import type { Redis } from 'ioredis';
import type { ExecuteEvent } from '../contract/index.js';

/** More live events than this waiting for a slow consumer: let the history serve them instead. */
const BUFFER_LIMIT = 10_000;

/**
 * A job's live events from its pub/sub channel, buffered for the consumer in bounded memory.
 * Whenever live delivery cannot be trusted to be complete (the subscriber reconnected, or the
 * consumer fell so far behind that the buffer was dropped), `takeResync` says so once: the
 * missing events are then read from the history.
 */
export class LiveEvents {
  private readonly subscriber: Redis;
  private buffer: ExecuteEvent[] = [];
  private resync = false;
  private subscribed = false;
  private wake: (() => void) | null = null;

  constructor(
    redis: Redis,
    private readonly channel: string,
  ) {
    this.subscriber = redis.duplicate({ maxRetriesPerRequest: null });
    // It reconnects by itself; what it missed meanwhile comes from the history.
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, message: string) => this.receive(message));
    this.subscriber.on('ready', () => {
      if (this.subscribed) this.needResync();
    });
  }

  async subscribe(): Promise<void> {
    await this.subscriber.subscribe(this.channel);
    this.subscribed = true;
  }

  /** Whether the history must fill in (asked once: it resets). */
  takeResync(): boolean {
    const was = this.resync;
    this.resync = false;
    return was;
  }

  /** The events received so far, in seq order, taken out of the buffer. */
  drain(): ExecuteEvent[] {
    return this.buffer.splice(0).sort((a, b) => a.seq - b.seq);
  }

  /** Resolves when there is something to do, the time is up, or the signal aborts. */
  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.buffer.length > 0 || this.resync || signal?.aborted) return;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => this.poke();
    signal?.addEventListener('abort', onAbort);
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }

  close(): void {
    this.subscriber.disconnect();
  }

  private receive(message: string): void {
    let event: ExecuteEvent;
    try {
      event = JSON.parse(message) as ExecuteEvent;
    } catch {
      return; // not one of ours: someone else published on the channel
    }
    if (this.buffer.length >= BUFFER_LIMIT) {
      this.buffer = [];
      this.needResync();
      return;
    }
    this.buffer.push(event);
    this.poke();
  }

  private needResync(): void {
    this.resync = true;
    this.poke();
  }

  private poke(): void {
    this.wake?.();
    this.wake = null;
  }
}
