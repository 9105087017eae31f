import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  eventChannel,
  isFinalEvent,
  type ExecuteEvent,
  type GapEvent,
  type QueueAddress,
} from '../contract/index.js';
import { readFirstSeq, readHistory, readLastEvent } from '../history/history.js';
import { ClaudeboxError } from './errors.js';

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
  const idleCheckMs = options.idleCheckMs ?? 5000;
  let next = Math.max(1, options.fromSeq ?? 1);
  const live: ExecuteEvent[] = [];
  let wake: (() => void) | null = null;
  // Set when the subscriber (re)connects: it may have missed events while it was away.
  let reconnected = false;
  const takeReconnected = (): boolean => {
    const was = reconnected;
    reconnected = false;
    return was;
  };
  const poke = (): void => {
    wake?.();
    wake = null;
  };

  const subscriber = redis.duplicate({ maxRetriesPerRequest: null });
  subscriber.on('error', () => undefined); // it reconnects by itself; missed events are backfilled
  subscriber.on('message', (_channel: string, message: string) => {
    live.push(JSON.parse(message) as ExecuteEvent);
    poke();
  });
  subscriber.on('ready', () => {
    reconnected = true;
    poke();
  });
  signal?.addEventListener('abort', poke);

  /** History from `next` up to (not including) `before`, in pages. */
  async function* backfill(before = Infinity): AsyncGenerator<ExecuteEvent> {
    for (;;) {
      const page = await readHistory(redis, address, jobId, next, PAGE);
      for (const event of page) {
        if (event.seq < next || event.seq >= before) continue;
        yield event;
      }
      if (page.length < PAGE) return;
    }
  }

  try {
    const follow = options.follow ?? true;
    if (follow) await subscriber.subscribe(eventChannel(address.queueName, jobId));
    takeReconnected();

    const first = await readFirstSeq(redis, address, jobId);
    if (first === null && (await queue.getJobState(jobId)) === 'unknown') {
      throw new ClaudeboxError(
        'job-not-found',
        `job ${jobId} not found in queue ${address.queueName}`,
      );
    }
    if (first !== null && first > next) {
      // Older events were trimmed from the history (EVENTS_MAX_LEN): say so, do not pretend.
      yield trimmedGap(jobId, next, first - 1);
      next = first;
    }
    let seenAny = first !== null;
    for await (const event of backfill()) {
      yield event;
      next = event.seq + 1;
      if (isFinalEvent(event)) return;
    }
    if (!follow) return;
    // Asked for events past the end of a job that is over: there will be none.
    const last = await readLastEvent(redis, address, jobId);
    if (last && isFinalEvent(last) && last.seq < next) return;

    let idleSince = Date.now();
    while (!signal?.aborted) {
      if (takeReconnected()) {
        // The subscriber was away for a while: what it missed is in the history.
        for await (const event of backfill()) {
          yield event;
          next = event.seq + 1;
          if (isFinalEvent(event)) return;
        }
      }
      live.sort((a, b) => a.seq - b.seq);
      while (live.length > 0) {
        const event = live.shift() as ExecuteEvent;
        if (event.seq < next) continue;
        if (event.seq > next) {
          // A hole: read what the history holds of it; the rest is named by a gap event later.
          for await (const missed of backfill(event.seq)) {
            yield missed;
            next = missed.seq + 1;
          }
        }
        seenAny = true;
        idleSince = Date.now();
        yield event;
        next = event.seq + 1;
        if (isFinalEvent(event)) return;
      }
      if (Date.now() - idleSince >= idleCheckMs) {
        idleSince = Date.now();
        const state = await queue.getJobState(jobId);
        if (state === 'unknown' && !seenAny) {
          throw new ClaudeboxError(
            'job-not-found',
            `job ${jobId} not found in queue ${address.queueName}`,
          );
        }
        if (state === 'completed' || state === 'failed' || state === 'unknown') {
          // Finished without a final event we could see (it stalled out, or was removed).
          for await (const event of backfill()) {
            yield event;
            next = event.seq + 1;
            if (isFinalEvent(event)) return;
          }
          return;
        }
      }
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, Math.max(50, idleCheckMs - (Date.now() - idleSince)));
      });
      clearTimeout(timer);
    }
  } finally {
    signal?.removeEventListener('abort', poke);
    subscriber.disconnect();
  }
}

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
