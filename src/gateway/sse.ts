import type { ServerResponse } from 'node:http';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/connections.js';
import type { ClaudeboxClient } from '../client/index.js';
import { isFinalEvent, type ExecuteEvent, type QueueAddress } from '../contract/index.js';
import { readLastEvent } from '../redis/history.js';
import { isOverAfterFinal, readFinishedResult } from '../client/job-result.js';
import { errorMessage } from '../common/errors.js';
import type { HeldBytes } from './held-bytes.js';

export interface StreamLimits {
  /** How long a client may leave the stream unread (its socket buffer full) before it is cut off. */
  readonly slowClientMs: number;
  /** A comment line this often, so proxies do not close a quiet stream. */
  readonly heartbeatMs: number;
  /** What all of the gateway's streams may hold of events being written out. */
  readonly held: HeldBytes;
}

/** How EventSource should retry after a lost connection (it sends Last-Event-ID then). */
const RETRY_MS = 2000;

/**
 * One event as SSE: `id` its seq (the Last-Event-ID of a reconnection), `event` its type. A
 * trimmed gap stands for the seqs it names: its id is the last, so a reconnection goes on after.
 */
export function formatEvent(event: ExecuteEvent): string {
  const id =
    event.type === 'gap' && event.data.reason === 'trimmed'
      ? (event.data.ranges.at(-1)?.to ?? event.seq)
      : event.seq;
  return `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * Where a stream from `fromSeq` stands before any header is sent: an unknown job (404), one
 * whose final event is already behind the client (204, which tells EventSource to stop
 * reconnecting), or events to stream.
 */
export async function streamStart(
  redis: RedisClient,
  queue: Queue,
  address: QueueAddress,
  jobId: string,
  fromSeq: number,
): Promise<'unknown' | 'over' | 'go'> {
  const last = await readLastEvent(redis, address, jobId);
  if (last !== null) {
    const behind = isFinalEvent(last) && last.seq < fromSeq;
    return behind && (await isOverAfterFinal(queue, jobId)) ? 'over' : 'go';
  }
  // No history: not written yet, or expired after the job's end, which the result tells.
  const state = await queue.getJobState(jobId);
  if (state === 'unknown') return 'unknown';
  const result = await readFinishedResult(queue, jobId, state);
  return result !== null && result.lastSeq < fromSeq ? 'over' : 'go';
}

/**
 * Streams the job's events from `fromSeq` to the response until the final terminal event, then
 * an `end` event, and closes. The next event is taken only once the last one was written out,
 * so a slow client holds at most the socket's buffer and one event here (the live events
 * behind it wait in the client's bounded buffer, then the history).
 */
export async function streamEvents(
  res: ServerResponse,
  client: ClaudeboxClient,
  jobId: string,
  fromSeq: number,
  limits: StreamLimits,
): Promise<void> {
  const sse = new SseResponse(res, limits.slowClientMs);
  const heartbeat = setInterval(() => sse.comment('keep-alive'), limits.heartbeatMs);
  try {
    sse.open();
    for await (const event of client.events(jobId, { fromSeq, signal: sse.signal })) {
      if (!(await sendHeld(sse, formatEvent(event), limits.held))) return;
    }
    await sse.send('event: end\ndata: {}\n\n');
  } catch (error) {
    // The job was removed meanwhile, or Redis failed us: say so, then close.
    await sse.send(`event: end\ndata: ${JSON.stringify({ error: errorMessage(error) })}\n\n`);
  } finally {
    clearInterval(heartbeat);
    sse.end();
  }
}

/**
 * Sends an event's text within what the gateway's streams may hold. Where it does not fit, the
 * client is cut off as a slow one is: EventSource comes back with Last-Event-ID, in a while.
 */
async function sendHeld(sse: SseResponse, text: string, held: HeldBytes): Promise<boolean> {
  // What one piece holds goes out outside the bound: all streams' together are bounded by their
  // number, and no client holding long events can keep another's short ones from it.
  if (text.length <= PIECE_CHARS) return sse.send(text);
  if (!held.take(text.length)) {
    sse.cut();
    return false;
  }
  try {
    return await sse.send(text);
  } finally {
    held.give(text.length);
  }
}

/** The headers of an event stream (a HEAD request gets them alone). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // nginx would otherwise hold events back in its buffer.
  'x-accel-buffering': 'no',
} as const;

/** The most of one text written to a client at once (see SseResponse.send). */
const PIECE_CHARS = 64 * 1024;

const isLowSurrogate = (code: number): boolean => code >= 0xdc00 && code <= 0xdfff;

/** A response written with backpressure: a write the socket cannot take waits for `drain`. */
class SseResponse {
  private readonly closed = new AbortController();

  constructor(
    private readonly res: ServerResponse,
    private readonly slowClientMs: number,
  ) {
    res.once('close', () => this.closed.abort());
    // Gone while the stream was being set up: its 'close' came before anyone listened.
    if (res.destroyed || res.closed) this.closed.abort();
  }

  /** Aborts when the client is gone. */
  get signal(): AbortSignal {
    return this.closed.signal;
  }

  open(): void {
    this.res.writeHead(200, { ...SSE_HEADERS, connection: 'keep-alive' });
    this.res.write(`retry: ${RETRY_MS}\n\n`);
  }

  /**
   * Whether the text went out (or into the socket's buffer); false once the client is gone. A
   * long text goes in pieces, each waiting for the one before to drain: a client reading it
   * steadily is seen to read (one event may be tens of MB), and the socket holds a piece of it,
   * not another copy of the whole.
   */
  async send(text: string): Promise<boolean> {
    for (let at = 0; at < text.length;) {
      if (this.signal.aborted) return false;
      let end = Math.min(text.length, at + PIECE_CHARS);
      // Each piece is encoded on its own: never between the two halves of a surrogate pair.
      if (end < text.length && isLowSurrogate(text.charCodeAt(end))) end -= 1;
      if (!this.res.write(text.slice(at, end)) && !(await this.drained())) return false;
      at = end;
    }
    return !this.signal.aborted;
  }

  comment(text: string): void {
    if (!this.signal.aborted && !this.res.writableNeedDrain) this.res.write(`: ${text}\n\n`);
  }

  end(): void {
    if (!this.signal.aborted) this.res.end();
  }

  /** Disconnects the client, which comes back with Last-Event-ID. */
  cut(): void {
    this.res.destroy();
  }

  /** Resolves once the buffer drained; a client that does not read for too long is cut off. */
  private drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.res.off('drain', onDrain);
        this.signal.removeEventListener('abort', onGone);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onGone = (): void => done(false);
      const timer = setTimeout(() => {
        // It can come back with Last-Event-ID and be served from the history.
        this.cut();
        done(false);
      }, this.slowClientMs);
      this.res.on('drain', onDrain);
      this.signal.addEventListener('abort', onGone);
    });
  }
}
