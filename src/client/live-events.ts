import { duplicateConnection, type RedisClient } from '../redis/connections.js';
import { sendSubscription } from '../redis/subscribe.js';
import { eventFromMessage, type ExecuteEvent, type PubSubMode } from '../contract/index.js';

/**
 * More live events than this, or more than this many characters of them, waiting for a slow
 * consumer: let the history serve them instead. The characters matter most: a run's line may be
 * up to MAX_LINE_BYTES (8 MiB by default), and a gateway holds a buffer for each watcher.
 */
const BUFFER_LIMIT = 10_000;
const BUFFER_LIMIT_CHARS = 32 * 1024 * 1024;

interface Channel {
  /** The job whose events the channel carries. */
  readonly jobId: string;
  readonly watchers: Set<LiveEvents>;
  readonly subscribed: Promise<unknown>;
}

/**
 * The live events of every job a client follows, over one Redis connection, with one
 * SUBSCRIBE per job however many iterations follow it: a gateway with a thousand watchers of
 * one run costs Redis one subscription. Each watcher has a buffer of its own, so a slow one
 * holds up no other. In `sharded` mode it uses SSUBSCRIBE, which a Redis Cluster client sends to
 * the shard of each channel's slot.
 */
export class Subscriptions {
  private subscriber: RedisClient | null = null;
  private readonly channels = new Map<string, Channel>();
  /** The subscriber was connected before: a later `ready` is a reconnection. */
  private connectedOnce = false;
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    readonly mode: PubSubMode = 'plain',
  ) {}

  /** A watcher of the job's channel, once Redis confirmed the subscription. */
  async watch(channel: string, jobId: string): Promise<LiveEvents> {
    // A subscriber opened now would outlive the client, which closes no connection twice.
    if (this.closed) throw new Error(`the client is closed: it follows no job (${jobId}) any more`);
    const live = new LiveEvents(() => this.leave(channel, live));
    let entry = this.channels.get(channel);
    if (!entry) {
      const subscriber = this.connection();
      const subscribed = sendSubscription(
        subscriber,
        this.mode === 'sharded' ? 'ssubscribe' : 'subscribe',
        channel,
      );
      entry = { jobId, watchers: new Set(), subscribed };
      this.channels.set(channel, entry);
    }
    entry.watchers.add(live);
    try {
      await entry.subscribed;
    } catch (error) {
      live.close();
      throw error;
    }
    return live;
  }

  /** Ends every watcher's iteration (see LiveEvents.ended), and the subscriber. */
  close(): void {
    this.closed = true;
    this.channels.forEach((entry) => entry.watchers.forEach((live) => live.end()));
    this.subscriber?.disconnect();
    this.subscriber = null;
    this.channels.clear();
  }

  private leave(channel: string, live: LiveEvents): void {
    const entry = this.channels.get(channel);
    if (!entry?.watchers.delete(live) || entry.watchers.size > 0) return;
    this.channels.delete(channel);
    // Commands go out in order: a watcher that comes next subscribes after this.
    const subscriber = this.subscriber;
    if (!subscriber) return;
    const command = this.mode === 'sharded' ? 'sunsubscribe' : 'unsubscribe';
    sendSubscription(subscriber, command, channel).catch(() => undefined);
  }

  private connection(): RedisClient {
    if (this.subscriber) return this.subscriber;
    const subscriber = duplicateConnection(
      this.redis,
      { maxRetriesPerRequest: null },
      // Without it a Cluster client sends every SSUBSCRIBE to one node, which refuses most.
      this.mode === 'sharded' ? { shardedSubscribers: true } : {},
    );
    // It reconnects (and resubscribes) by itself; what it missed meanwhile comes from the history.
    subscriber.on('error', () => undefined);
    subscriber.on(
      this.mode === 'sharded' ? 'smessage' : 'message',
      (channel: string, message: string) => {
        this.dispatch(channel, message);
      },
    );
    subscriber.on('ready', () => {
      if (this.connectedOnce) this.channels.forEach((entry) => entry.watchers.forEach(resync));
      this.connectedOnce = true;
    });
    this.subscriber = subscriber;
    return subscriber;
  }

  private dispatch(channel: string, message: string): void {
    const entry = this.channels.get(channel);
    if (!entry || entry.watchers.size === 0) return;
    const { watchers } = entry;
    const event = eventFromMessage(message, entry.jobId);
    if (event === null) return; // not one of ours: someone else published on the channel
    watchers.forEach((live) => live.receive(event, message.length));
  }
}

const resync = (live: LiveEvents): void => live.needResync();

/**
 * One iteration's view of a job's live events, buffered in bounded memory. Whenever live
 * delivery cannot be trusted to be complete (the subscriber reconnected, or the consumer fell
 * so far behind that the buffer was dropped), `takeResync` says so once: the missing events
 * are then read from the history.
 */
export class LiveEvents {
  private buffer: ExecuteEvent[] = [];
  private bufferedChars = 0;
  private resync = false;
  private wake: (() => void) | null = null;
  private closed = false;
  /** Set when the client closes: the iteration following these events ends. */
  ended = false;

  constructor(private readonly onClose: () => void) {}

  end(): void {
    this.ended = true;
    this.poke();
  }

  /** Whether the history must fill in (asked once: it resets). */
  takeResync(): boolean {
    const was = this.resync;
    this.resync = false;
    return was;
  }

  /** The events received so far, in seq order, taken out of the buffer. */
  drain(): ExecuteEvent[] {
    this.bufferedChars = 0;
    return this.buffer.splice(0).sort((a, b) => a.seq - b.seq);
  }

  /** Resolves when there is something to do, the time is up, or the signal aborts. */
  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.buffer.length > 0 || this.resync || this.ended || signal?.aborted) return;
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
    if (this.closed) return;
    this.closed = true;
    this.buffer = [];
    this.bufferedChars = 0;
    this.onClose();
  }

  /** `chars`: the length of the message the event came in. */
  receive(event: ExecuteEvent, chars: number): void {
    if (this.buffer.length >= BUFFER_LIMIT || this.bufferedChars + chars > BUFFER_LIMIT_CHARS) {
      this.buffer = [];
      this.bufferedChars = 0;
      this.needResync();
      return;
    }
    this.buffer.push(event);
    this.bufferedChars += chars;
    this.poke();
  }

  needResync(): void {
    this.resync = true;
    this.poke();
  }

  private poke(): void {
    this.wake?.();
    this.wake = null;
  }
}
