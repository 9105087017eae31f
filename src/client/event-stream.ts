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
import { ClaudeboxError, jobNotFound } from './errors.js';
import { isOver, isOverAfterFinal, readFinishedResult } from './job-result.js';
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
/** What a page of the history holds at most, but for its first event (see readHistory). */
const PAGE_BYTES = 1024 * 1024;

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
  // A caller in JavaScript may pass null for none.
  options: EventsOptions | null = {},
): AsyncGenerator<ExecuteEvent> {
  const { follow = true, signal, fromSeq = 1, idleCheckMs = 5000 } = options ?? {};
  optionsMustHold(fromSeq, idleCheckMs, signal);
  if (signal?.aborted) return;
  const reader = new EventReader(redis, queue, address, jobId, fromSeq, signal);
  let live: LiveEvents | null = null;
  try {
    if (follow) {
      const watching = subscriptions.watch(eventChannel(address, jobId), jobId);
      try {
        live = await reader.read(watching);
      } catch (error) {
        // Given up on while Redis did not answer: closed once it comes, if it does.
        if (error instanceof Aborted)
          void watching.then(
            (late) => late.close(),
            () => undefined,
          );
        throw error;
      }
    }
    await reader.checkExists();
    if (yield* reader.expired()) return;
    if ((yield* reader.replay()) || live === null) return;
    if (await reader.isPastTheEnd()) return;
    yield* reader.follow(live, idleCheckMs);
  } catch (error) {
    if (!(error instanceof Aborted)) throw error;
  } finally {
    live?.close();
  }
}

/** Thrown by EventReader.read once the signal aborts: the iteration ends, without an error. */
class Aborted extends Error {}

/** Throws `invalid-request`, naming the option, where one is of no use. */
function optionsMustHold(fromSeq: unknown, idleCheckMs: unknown, signal: unknown): void {
  const refused = (problem: string) => new ClaudeboxError('invalid-request', `events: ${problem}`);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw refused('signal must be an AbortSignal');
  }
  if (!Number.isSafeInteger(fromSeq)) {
    throw refused(`fromSeq must be a whole number, not ${String(fromSeq)}`);
  }
  if (typeof idleCheckMs !== 'number' || !(idleCheckMs > 0 && idleCheckMs <= MAX_IDLE_CHECK_MS)) {
    throw refused(
      `idleCheckMs must be a number of milliseconds above 0, at most ${MAX_IDLE_CHECK_MS}, not ${String(idleCheckMs)}`,
    );
  }
}

/** The longest a timer counts: a day is more than any idle check needs. */
const MAX_IDLE_CHECK_MS = 24 * 3600 * 1000;

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
    fromSeq: number,
    /** Once it aborts, nothing more is read or yielded. */
    private readonly signal: AbortSignal | undefined,
  ) {
    this.next = Math.max(1, fromSeq);
  }

  private stopped(): boolean {
    return this.signal?.aborted === true;
  }

  /**
   * What a read of Redis gives, unless the signal aborts first (the client's connection waits
   * for Redis to come back, however long it is away): then Aborted.
   */
  read<T>(reading: Promise<T>): Promise<T> {
    const { signal } = this;
    if (signal === undefined) return reading;
    if (signal.aborted) return Promise.reject(new Aborted());
    let onAbort = (): void => undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Aborted());
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([reading, aborted]).finally(() =>
      signal.removeEventListener('abort', onAbort),
    );
  }

  /** Throws 'job-not-found' for a job with neither a history nor a state. */
  async checkExists(): Promise<void> {
    this.seenAny = (await this.read(readFirstSeq(this.redis, this.address, this.jobId))) !== null;
    if (this.seenAny) return;
    this.stateWithoutHistory = await this.read(this.queue.getJobState(this.jobId));
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
    const result = await this.read(readFinishedResult(this.queue, this.jobId, state));
    if (result === null) return false;
    // A job that ended between checkExists's two looks wrote its history before it ended.
    if ((await this.read(readFirstSeq(this.redis, this.address, this.jobId))) !== null)
      return false;
    if (result.lastSeq >= this.next && !this.stopped()) {
      yield trimmedGap(this.jobId, result.attempt, this.next, result.lastSeq);
      this.next = result.lastSeq + 1;
    }
    return true;
  }

  /** Asked for events past the end of a job that is over: there will be none. */
  async isPastTheEnd(): Promise<boolean> {
    const last = await this.read(readLastEvent(this.redis, this.address, this.jobId));
    if (last === null || !isFinalEvent(last) || last.seq >= this.next) return false;
    return this.read(isOverAfterFinal(this.queue, this.jobId));
  }

  /**
   * Yields what the history holds from `next` on (below `before`), moving `next` along;
   * returns true once the job's final event went out and the job is over, or the signal
   * aborted. A final event is the end only where nothing follows it: a job retried by hand
   * numbers the events of its next attempt on after it.
   */
  async *replay(before = Infinity): AsyncGenerator<ExecuteEvent, boolean> {
    let endsWithFinal = false;
    for (let cursor = this.next; ;) {
      if (this.stopped()) return true;
      const page = await this.read(
        readHistory(this.redis, this.address, this.jobId, cursor, PAGE, PAGE_BYTES),
      );
      // A page that starts past where it was asked (the first one included): the history may
      // have been trimmed (EVENTS_MAX_LEN, and EVENTS_MAX_BYTES as a run goes on), which only
      // ever takes the oldest entries. A hole within a page is events lost, which a gap event
      // of the worker's names.
      if (page.first !== null && page.first > cursor) {
        yield* this.trimmed(before, page.events[0]?.attempt ?? 1);
      }
      for (const event of page.events) {
        if (this.stopped()) return true;
        if (event.seq >= before) return false;
        if (event.seq < this.next) continue;
        this.next = event.seq + 1;
        yield event;
        endsWithFinal = isFinalEvent(event);
      }
      if (page.next === null) {
        return endsWithFinal && (await this.read(isOverAfterFinal(this.queue, this.jobId)));
      }
      cursor = page.next;
    }
  }

  /**
   * A gap event for what the history no longer holds from `next` on (below `before`): older
   * events were trimmed from it (EVENTS_MAX_LEN, EVENTS_MAX_BYTES). Say so, do not pretend.
   * `attempt`: that of the history's oldest event now, which the gap ends before.
   */
  private async *trimmed(before: number, attempt: number): AsyncGenerator<ExecuteEvent> {
    const first = await this.read(readFirstSeq(this.redis, this.address, this.jobId));
    if (first === null || first <= this.next || this.next >= before || this.stopped()) return;
    const to = Math.min(first, before) - 1;
    yield trimmedGap(this.jobId, attempt, this.next, to);
    this.next = to + 1;
  }

  /** Yields the live events until the final one, the job's end, the signal, or the client's close. */
  async *follow(live: LiveEvents, idleCheckMs: number): AsyncGenerator<ExecuteEvent> {
    const { signal } = this;
    let idleSince = Date.now();
    while (!this.stopped() && !live.ended) {
      if (live.takeResync() && (yield* this.replay())) return;
      for (const event of live.drain()) {
        // A hole: the history fills in what it holds; the rest a gap event names later.
        if (event.seq > this.next && (yield* this.replay(event.seq))) return;
        if (event.seq < this.next) continue;
        if (this.stopped()) return;
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
    const state = await this.read(this.queue.getJobState(this.jobId));
    if (state === 'unknown' && !this.seenAny) throw jobNotFound(this.jobId, this.address.queueName);
    return isOver(state);
  }
}

/** Made up by the client for events the history no longer holds; its seq is the first missing. */
function trimmedGap(jobId: string, attempt: number, from: number, to: number): GapEvent {
  return {
    jobId,
    attempt,
    seq: from,
    type: 'gap',
    timestamp: new Date().toISOString(),
    data: { ranges: [{ from, to }], count: to - from + 1, reason: 'trimmed' },
  };
}
