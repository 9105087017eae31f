import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import {
  eventChannel,
  isFinalEvent,
  type ExecuteEvent,
  type GapEvent,
  type QueueAddress,
} from '../contract/index.js';
import { readFirstSeq, readHistory, readLastEvent } from '../redis/history.js';
import { jobNotFound } from './errors.js';
import { readFinishedResult } from './job-result.js';
import type { LiveEvents, Subscriptions } from './live-events.js';

export interface EventsOptions {
  /** The first seq wanted (1 by default: everything). */
  readonly fromSeq?: number;
  /** Stops the iteration (it then ends without an error). */
  readonly signal?: AbortSignal;
  /** How long without events before the job's state is checked (5 s by default). */
  readonly idleCheckMs?: number;
  /** false: only what the history holds now, then end (default true: follow the run live). */
  readonly follow?: boolean;
}

const PAGE = 500;

/**
 * Every event of a job from `fromSeq` on, exactly once and in order, live or long after the run,
 * ending after the job's final terminal event. It subscribes first and reads the history after,
 * so nothing published in between is missed; duplicates are dropped by seq.
 */
export async function* jobEvents(
  redis: RedisClient,
  subscriptions: Subscriptions,
  queue: Queue,
  address: QueueAddress,
  jobId: string,
  options: EventsOptions = {},
): AsyncGenerator<ExecuteEvent> {
  const follow = options.follow ?? true;
  const reader = new EventReader(redis, queue, address, jobId, options.fromSeq);
  let live: LiveEvents | null = null;
  try {
    if (follow) live = await subscriptions.watch(eventChannel(address, jobId), jobId);
    await reader.checkExists();
    if (yield* reader.expired()) return;
    if ((yield* reader.replay()) || live === null) return;
    if (await reader.isPastTheEnd()) return;
    yield* reader.follow(live, options.signal, options.idleCheckMs ?? 5000);
  } finally {
    live?.close();
  }
}

/**
 * One iteration over a job's events. `next`, the first seq not yielded yet, is shared by the
 * history and the live events: whichever delivers an event first, the other's copy is dropped.
 */
class EventReader {
  private next: number;
  /** Whether the job showed itself (history or a live event): if its state goes, it was removed. */
  private seenAny = false;
  /** The job's state when checkExists found no history; undefined where it found one. */
  private stateWithoutHistory: string | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly queue: Queue,
    private readonly address: QueueAddress,
    private readonly jobId: string,
    fromSeq = 1,
  ) {
    this.next = Math.max(1, fromSeq);
  }

  /** Throws 'job-not-found' for a job with neither a history nor a state. */
  async checkExists(): Promise<void> {
    this.seenAny = (await readFirstSeq(this.redis, this.address, this.jobId)) !== null;
    if (this.seenAny) return;
    this.stateWithoutHistory = await this.queue.getJobState(this.jobId);
    if (this.stateWithoutHistory === 'unknown') {
      throw jobNotFound(this.jobId, this.address.queueName);
    }
  }

  /**
   * A job that is over and whose history is gone (it expired, EVENTS_TTL_SECONDS after the
   * end): its result says how far its events went, so a gap names the ones wanted, and nothing
   * more follows. False while the job has a history or is not over.
   */
  async *expired(): AsyncGenerator<ExecuteEvent, boolean> {
    const state = this.stateWithoutHistory;
    if (state === undefined) return false;
    const result = await readFinishedResult(this.queue, this.jobId, state);
    if (result === null) return false;
    // A job that ended between checkExists's two looks wrote its history before it ended.
    if ((await readFirstSeq(this.redis, this.address, this.jobId)) !== null) return false;
    if (result.lastSeq >= this.next) {
      yield trimmedGap(this.jobId, this.next, result.lastSeq);
      this.next = result.lastSeq + 1;
    }
    return true;
  }

  /** Asked for events past the end of a job that is over: there will be none. */
  async isPastTheEnd(): Promise<boolean> {
    const last = await readLastEvent(this.redis, this.address, this.jobId);
    return last !== null && isFinalEvent(last) && last.seq < this.next;
  }

  /**
   * Yields what the history holds from `next` on (below `before`), moving `next` along;
   * returns true once the job's final event went out.
   */
  async *replay(before = Infinity): AsyncGenerator<ExecuteEvent, boolean> {
    for (let cursor = this.next; ;) {
      const page = await readHistory(this.redis, this.address, this.jobId, cursor, PAGE);
      // A page that starts past where it was asked (the first one included): the history may
      // have been trimmed (EVENTS_MAX_LEN, and EVENTS_MAX_BYTES as a run goes on), which only
      // ever takes the oldest entries. A hole within a page is events lost, which a gap event
      // of the worker's names.
      if (page.first !== null && page.first > cursor) yield* this.trimmed(before);
      for (const event of page.events) {
        if (event.seq >= before) return false;
        if (event.seq < this.next) continue;
        this.next = event.seq + 1;
        yield event;
        if (isFinalEvent(event)) return true;
      }
      if (page.next === null) return false;
      cursor = page.next;
    }
  }

  /**
   * A gap event for what the history no longer holds from `next` on (below `before`): older
   * events were trimmed from it (EVENTS_MAX_LEN, EVENTS_MAX_BYTES). Say so, do not pretend.
   */
  private async *trimmed(before: number): AsyncGenerator<ExecuteEvent> {
    const first = await readFirstSeq(this.redis, this.address, this.jobId);
    if (first === null || first <= this.next || this.next >= before) return;
    const to = Math.min(first, before) - 1;
    yield trimmedGap(this.jobId, this.next, to);
    this.next = to + 1;
  }

  /** Yields the live events until the final one, the job's end, or the signal. */
  async *follow(
    live: LiveEvents,
    signal: AbortSignal | undefined,
    idleCheckMs: number,
  ): AsyncGenerator<ExecuteEvent> {
    let idleSince = Date.now();
    while (!signal?.aborted) {
      if (live.takeResync() && (yield* this.replay())) return;
      for (const event of live.drain()) {
        // A hole: the history fills in what it holds; the rest a gap event names later.
        if (event.seq > this.next && (yield* this.replay(event.seq))) return;
        if (event.seq < this.next) continue;
        this.seenAny = true;
        idleSince = Date.now();
        this.next = event.seq + 1;
        yield event;
        if (isFinalEvent(event)) return;
      }
      if (Date.now() - idleSince >= idleCheckMs) {
        idleSince = Date.now();
        if (await this.endedUnseen()) {
          yield* this.replay();
          return;
        }
      }
      await live.wait(Math.max(50, idleCheckMs - (Date.now() - idleSince)), signal);
    }
  }

  /** Whether the job ended without a final event we could see (it stalled out, or was removed). */
  private async endedUnseen(): Promise<boolean> {
    const state = await this.queue.getJobState(this.jobId);
    if (state === 'unknown' && !this.seenAny) throw jobNotFound(this.jobId, this.address.queueName);
    return state === 'completed' || state === 'failed' || state === 'unknown';
  }
}

/** Made up by the client for events the history no longer holds; its seq is the first missing. */
function trimmedGap(jobId: string, from: number, to: number): GapEvent {
  return {
    jobId,
    attempt: 1,
    seq: from,
    type: 'gap',
    timestamp: new Date().toISOString(),
    data: { ranges: [{ from, to }], count: to - from + 1, reason: 'trimmed' },
  };
}
