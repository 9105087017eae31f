import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  eventChannel,
  isFinalEvent,
  type ExecuteEvent,
  type GapEvent,
  type QueueAddress,
} from '../contract/index.js';
import { readFirstSeq, readHistory, readLastEvent } from '../redis/history.js';
import { ClaudeboxError } from './errors.js';
import { LiveEvents } from './live-events.js';

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
  redis: Redis,
  queue: Queue,
  address: QueueAddress,
  jobId: string,
  options: EventsOptions = {},
): AsyncGenerator<ExecuteEvent> {
  const { signal } = options;
  const follow = options.follow ?? true;
  const idleCheckMs = options.idleCheckMs ?? 5000;
  const notFound = (): ClaudeboxError =>
    new ClaudeboxError('job-not-found', `job ${jobId} not found in queue ${address.queueName}`);
  let next = Math.max(1, options.fromSeq ?? 1);

  /**
   * Yields what the history holds from `next` on (below `before`), moving `next` along;
   * returns true once the job's final event went out.
   */
  async function* replay(before = Infinity): AsyncGenerator<ExecuteEvent, boolean> {
    const first = await readFirstSeq(redis, address, jobId);
    if (first !== null && first > next && next < before) {
      // Older events were trimmed from the history (EVENTS_MAX_LEN): say so, do not pretend.
      const to = Math.min(first, before) - 1;
      yield trimmedGap(jobId, next, to);
      next = to + 1;
    }
    for (let cursor = next; ;) {
      const page = await readHistory(redis, address, jobId, cursor, PAGE);
      for (const event of page) {
        if (event.seq >= before) return false;
        if (event.seq < next) continue;
        next = event.seq + 1;
        yield event;
        if (isFinalEvent(event)) return true;
      }
      const last = page.at(-1);
      if (page.length < PAGE || last === undefined) return false;
      cursor = last.seq + 1;
    }
  }

  const live = new LiveEvents(redis, eventChannel(address.queueName, jobId));
  try {
    if (follow) await live.subscribe();
    const seenHistory = (await readFirstSeq(redis, address, jobId)) !== null;
    if (!seenHistory && (await queue.getJobState(jobId)) === 'unknown') throw notFound();
    if ((yield* replay()) || !follow) return;
    // Asked for events past the end of a job that is over: there will be none.
    const last = await readLastEvent(redis, address, jobId);
    if (last && isFinalEvent(last) && last.seq < next) return;

    let seenAny = seenHistory;
    let idleSince = Date.now();
    while (!signal?.aborted) {
      if (live.takeResync() && (yield* replay())) return;
      for (const event of live.drain()) {
        // A hole: the history fills in what it holds; the rest a gap event names later.
        if (event.seq > next && (yield* replay(event.seq))) return;
        if (event.seq < next) continue;
        seenAny = true;
        idleSince = Date.now();
        next = event.seq + 1;
        yield event;
        if (isFinalEvent(event)) return;
      }
      if (Date.now() - idleSince >= idleCheckMs) {
        idleSince = Date.now();
        const state = await queue.getJobState(jobId);
        if (state === 'unknown' && !seenAny) throw notFound();
        if (state === 'completed' || state === 'failed' || state === 'unknown') {
          // It ended without a final event we could see (it stalled out, or was removed).
          yield* replay();
          return;
        }
      }
      await live.wait(Math.max(50, idleCheckMs - (Date.now() - idleSince)), signal);
    }
  } finally {
    live.close();
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
