import type { Cluster, Redis } from 'ioredis';
import {
  historyKey,
  eventChannel,
  type PubSubMode,
  type QueueAddress,
} from '../../contract/index.js';
import { JobEvents, type EventSink, type PendingEvent } from './job-events.js';
import { writeBatch } from './write-batch.js';
import { asError } from '../../common/errors.js';
import { doneWithin } from '../../common/time.js';

/**
 * Publishes a job's events twice: on its pub/sub channel for whoever watches live, and into its
 * Redis Stream for replay (a line stored raw, see historyFields), a batch at a time, each event
 * stored before it is published (see write-batch.ts), so any event a subscriber missed is
 * already in the stream when it looks. Stream entry ids are `<seq>-0`: a replayed write of the
 * same event is refused by Redis instead of stored twice.
 *
 * While Redis is unreachable, events wait in memory up to `bufferBytes` across all jobs; past
 * that, output and stderr lines are dropped and a `gap` event names their seqs once events flow
 * again. While Redis is reachable, a job that prints faster than Redis takes it is slowed down
 * instead (`JobEvents.line` returns a promise to wait on), so nothing is dropped.
 */
export interface PublisherOptions {
  /** A connection of its own, with enableOfflineQueue off, so commands fail fast during an outage. */
  readonly redis: Redis | Cluster;
  readonly address: QueueAddress;
  readonly maxLen: number;
  /** Bytes of events an attempt keeps in the history (EVENTS_MAX_BYTES); no cap by default. */
  readonly maxBytes?: number;
  readonly ttlSeconds: number;
  readonly bufferBytes: number;
  /** PUBLISH or SPUBLISH (EVENTS_PUBSUB); plain by default. */
  readonly pubsub?: PubSubMode;
  /** Replicas that must have a batch before it counts as written (EVENTS_WAIT_REPLICAS). */
  readonly waitReplicas?: number;
  readonly now?: () => number;
  readonly onDropped?: (count: number) => void;
  readonly onPublishError?: (error: Error) => void;
}

/** How long a batch waits for its replicas before it is tried again. */
const WAIT_REPLICAS_MS = 1000;

export class EventPublisher implements EventSink {
  private buffered = 0;
  private readonly jobs = new Set<JobEvents>();
  private ready: Promise<void> | null = null;

  constructor(readonly options: PublisherOptions) {}

  /** Events of one attempt of a job, numbered from `nextSeq`. */
  open(jobId: string, attempt: number, nextSeq: number): JobEvents {
    const job = new JobEvents(this, jobId, attempt, nextSeq);
    this.jobs.add(job);
    return job;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  get bufferBytes(): number {
    return this.options.bufferBytes;
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds;
  }

  get historyMaxBytes(): number {
    return this.options.maxBytes ?? Infinity;
  }

  now(): number {
    return (this.options.now ?? Date.now)();
  }

  dropped(count: number): void {
    this.options.onDropped?.(count);
  }

  /** A method, not a getter: it changes across awaits, and must not be narrowed like a field. */
  isConnected(): boolean {
    return this.options.redis.status === 'ready';
  }

  /** Waits until every job's events so far are in Redis, or the time is up. */
  async flushAll(timeoutMs: number): Promise<boolean> {
    return doneWithin(Promise.all([...this.jobs].map((job) => job.flush())), timeoutMs);
  }

  account(bytes: number): void {
    this.buffered += bytes;
  }

  forget(job: JobEvents): void {
    this.jobs.delete(job);
  }

  /** One wait for the connection, however many jobs wait on it (each its own listener, else). */
  whenReady(): Promise<void> {
    const { redis } = this.options;
    if (redis.status === 'ready') return Promise.resolve();
    this.ready ??= new Promise<void>((resolve) => {
      const done = (): void => {
        clearInterval(poll);
        redis.off('ready', done);
        this.ready = null;
        resolve();
      };
      // 'ready' may have fired between the check and the listener: look again now and then.
      const poll = setInterval(() => {
        if (redis.status === 'ready' || redis.status === 'end') done();
      }, 500);
      redis.once('ready', done);
    });
    return this.ready;
  }

  /** Removes the job's history entries below `seq`: false, reported, where Redis refused. */
  async trim(jobId: string, seq: number): Promise<boolean> {
    const { redis, address } = this.options;
    try {
      await redis.xtrim(historyKey(address, jobId), 'MINID', `${seq}-0`);
      return true;
    } catch (error) {
      this.options.onPublishError?.(asError(error));
      return false;
    }
  }

  async write(jobId: string, batch: readonly PendingEvent[]): Promise<'ok' | 'retry'> {
    const { redis, address, maxLen } = this.options;
    const mode = this.options.pubsub ?? 'plain';
    const target = {
      key: historyKey(address, jobId),
      channel: eventChannel(address, jobId),
      sharded: mode === 'sharded',
      maxLen,
    };
    const replicas = this.options.waitReplicas ?? 0;
    try {
      if (replicas === 0) {
        await writeBatch(redis, target, batch);
        return 'ok';
      }
      // A primary that fails over drops what its replica had not got yet: such a batch is
      // written again, to the new primary (the ids make that harmless).
      const wait = { count: replicas, timeoutMs: WAIT_REPLICAS_MS };
      const acknowledged = await writeBatch(redis, target, batch, wait);
      if (acknowledged >= replicas) return 'ok';
      this.options.onPublishError?.(new Error(`${acknowledged} of ${replicas} replicas have it`));
      return 'retry';
    } catch (error) {
      this.options.onPublishError?.(asError(error));
      return 'retry';
    }
  }
}
