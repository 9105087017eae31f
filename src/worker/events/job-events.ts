import {
  historyFields,
  type ExecuteEvent,
  type ExecuteResult,
  type HistoryFields,
} from '../../contract/index.js';

export interface PendingEvent {
  readonly seq: number;
  /** The event's JSON, as PUBLISH sends it (see `asWritten` for when it is bytes). */
  readonly json: string | Buffer;
  /** The event's entry in the history stream: its fields and values. */
  readonly stored: HistoryFields;
  /** Seconds until the stream expires, set along with this event. */
  readonly expire?: number;
}

/**
 * What a job's events need of the publisher that writes them (EventPublisher): the shared
 * buffer's accounting, the connection's state, and the write itself.
 */
export interface EventSink {
  /**
   * Bytes of events held in memory across all jobs (both forms of each, see heldBytes), and the
   * most there may be.
   */
  readonly bufferedBytes: number;
  readonly bufferBytes: number;
  /** Bytes of events an attempt keeps in its job's history (see JobEvents.keep). */
  readonly historyMaxBytes: number;
  /** Removes the job's history entries below `seq`: whether it did (it never throws). */
  trim(jobId: string, seq: number): Promise<boolean>;
  /** Seconds a job's history lives after its last event is written. */
  readonly ttlSeconds: number;
  now(): number;
  isConnected(): boolean;
  whenReady(): Promise<void>;
  write(jobId: string, batch: readonly PendingEvent[]): Promise<'ok' | 'retry'>;
  account(bytes: number): void;
  dropped(count: number): void;
  forget(job: JobEvents): void;
}

type LineType = 'output' | 'error';
type SeqRange = { from: number; to: number };

/** A job's queue waits below this before its run may print more (while Redis is reachable). */
const HIGH_WATER_BYTES = 1024 * 1024;
const BATCH_EVENTS = 256;
/**
 * Text up to this long goes to Redis as a string, which the client writes with the rest of a
 * batch as one string: the cheapest way for short lines. Longer text goes as bytes: the client
 * keeps the strings of a batch alive long enough for V8 to move them to its old generation, and
 * a run printing long lines then grows the worker's heap by about twice what it prints between
 * full collections.
 */
const LONG_TEXT = 1024;
const BATCH_BYTES = 256 * 1024;
/** Records of kept batches (see JobEvents.keep) before neighbours are merged. */
const KEPT_RECORDS = 1024;
const RETRY_DELAY_MS = 250;
const PERMANENT_FAILURES_BEFORE_GAP = 5;

/**
 * The events of one attempt of a job, numbered and queued for the publisher, written in order
 * by one pump at a time. See EventPublisher for what happens while Redis is away.
 */
export class JobEvents {
  private readonly queue: PendingEvent[] = [];
  private queuedBytes = 0;
  private pumping: Promise<void> | null = null;
  private readonly dropped: SeqRange[] = [];
  private dropReason: 'buffer-overflow' | 'publish-failed' = 'buffer-overflow';
  private seq: number;
  /** How many events at the head of the queue are being written right now. */
  private inFlight = 0;
  private readonly drainWaiters: (() => void)[] = [];
  private terminalSent = false;
  /** The batches this attempt has in the history, oldest first, with their bytes there. */
  private kept: { first: number; bytes: number }[] = [];
  private keptBytes = 0;
  private discarded = false;

  constructor(
    private readonly sink: EventSink,
    readonly jobId: string,
    readonly attempt: number,
    nextSeq: number,
  ) {
    this.seq = nextSeq - 1;
  }

  /** seq of the last event emitted (0 before the first). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Whether this attempt's own terminal event was emitted. */
  get ended(): boolean {
    return this.terminalSent;
  }

  /** The CLI started; the history is kept at least `retainSeconds` from now. */
  started(data: Extract<ExecuteEvent, { type: 'started' }>['data'], retainSeconds: number): void {
    if (this.terminalSent) return;
    this.enqueue({ type: 'started', data }, { expire: retainSeconds });
  }

  /**
   * One line of the CLI's output. Returns a promise when the caller should wait before the
   * next line (Redis is behind); undefined when it may go on at once.
   */
  line(
    type: LineType,
    content: string,
    data?: { partial?: boolean; encoding?: 'base64' },
    /** The line as printed, when `content` is it decoded: stored as is. */
    printed?: Buffer,
  ): Promise<void> | undefined {
    // Nothing of an attempt goes after its terminal event (lines read after the run was given up).
    if (this.terminalSent) return undefined;
    // The line is held twice: in the JSON published, and as the history stores it.
    const estimate = 2 * content.length + EVENT_HELD_BYTES + 200;
    const connected = this.sink.isConnected();
    const { bufferBytes } = this.sink;
    if (!connected && this.sink.bufferedBytes + estimate > bufferBytes) {
      this.drop(++this.seq, 'buffer-overflow');
      return undefined;
    }
    const extra = data && hasKeys(data) ? { data } : {};
    this.enqueue(
      type === 'output'
        ? { type, stream: 'stdout', content, ...extra }
        : { type, stream: 'stderr', content, ...extra },
      // Bytes are worth it for long lines only (see LONG_TEXT).
      printed === undefined || content.length <= LONG_TEXT ? {} : { printed },
    );
    return this.backpressure();
  }

  /** The terminal event of an attempt; its data.lastSeq is set to its own seq. */
  terminal(
    type: 'completed' | 'failed',
    result: Omit<ExecuteResult, 'lastSeq'>,
    attempt: number = this.attempt,
  ): ExecuteResult {
    this.emitGap();
    if (attempt === this.attempt) this.terminalSent = true;
    const seq = this.seq + 1;
    const data: ExecuteResult = { ...result, lastSeq: seq };
    this.enqueue({ type, data }, { attempt, expire: this.sink.ttlSeconds });
    return data;
  }

  /** Resolves once every event emitted so far is in Redis. */
  async flush(): Promise<void> {
    while (this.pumping) await this.pumping;
    if (this.queue.length > 0) {
      this.pump();
      await this.flush();
    }
  }

  /** Flushes and stops tracking this job. */
  async close(): Promise<void> {
    await this.flush();
    this.sink.forget(this);
  }

  /**
   * Gives up the events not yet written: the job is another worker's now, and what this one
   * still held would only interleave with that worker's events.
   */
  discard(): void {
    this.discarded = true;
    // A batch already on its way cannot be called back; the rest can.
    this.release(this.queue.splice(this.inFlight));
    this.drainWaiters.splice(0).forEach((wake) => wake());
    this.sink.forget(this);
  }

  private drop(seq: number, reason: 'buffer-overflow' | 'publish-failed'): void {
    insertIntoRanges(this.dropped, seq);
    this.dropReason = reason;
    this.sink.dropped(1);
  }

  private emitGap(): void {
    if (this.dropped.length === 0) return;
    const ranges = this.dropped.splice(0);
    const count = ranges.reduce((sum, r) => sum + r.to - r.from + 1, 0);
    this.enqueue({ type: 'gap', data: { ranges, count, reason: this.dropReason } });
  }

  private enqueue(
    body: DistributiveOmit<ExecuteEvent, 'jobId' | 'attempt' | 'seq' | 'timestamp'>,
    options: { attempt?: number; expire?: number; printed?: Buffer } = {},
  ): void {
    // The job is another worker's (or attempt's) now, numbering from where this one stopped.
    if (this.discarded) return;
    if (body.type !== 'gap' && body.type !== 'completed' && body.type !== 'failed') this.emitGap();
    const seq = ++this.seq;
    const time = this.sink.now();
    const event = {
      jobId: this.jobId,
      attempt: options.attempt ?? this.attempt,
      seq,
      timestamp: isoTime(time),
      ...body,
    };
    const text = JSON.stringify(event);
    const json = asWritten(text);
    const fields = historyFields(event, text, time, options.printed);
    const pending = { seq, json, stored: fields.map(asWritten) };
    const { expire } = options;
    this.queue.push(expire === undefined ? pending : { ...pending, expire });
    this.queuedBytes += json.length;
    this.sink.account(heldBytes(pending));
    this.pump();
  }

  /** Counts events out of the queue: written, or given up. */
  private release(events: readonly PendingEvent[]): void {
    for (const event of events) {
      this.queuedBytes -= event.json.length;
      this.sink.account(-heldBytes(event));
    }
  }

  /**
   * While Redis is reachable, a job waits on its own backlog only: only its own writes can
   * wake it, and a backlog that other jobs leave after an outage must not hold it up.
   */
  private backpressure(): Promise<void> | undefined {
    if (this.queuedBytes <= HIGH_WATER_BYTES || !this.sink.isConnected()) return undefined;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private releaseWaiters(): void {
    const under = this.queuedBytes <= HIGH_WATER_BYTES / 4;
    // During an outage the run goes on: lines are buffered, then dropped, never waited for.
    if (under || !this.sink.isConnected()) {
      this.drainWaiters.splice(0).forEach((wake) => wake());
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = this.drain().finally(() => {
      this.pumping = null;
      if (this.queue.length > 0) this.pump();
    });
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.queue.length > 0) {
      if (this.discarded) {
        // The batch that was on its way when the job became another's, and failed: its seqs
        // are the new owner's now.
        this.release(this.queue.splice(0));
        return;
      }
      if (!this.sink.isConnected()) {
        this.releaseWaiters();
        await this.sink.whenReady();
        continue;
      }
      const batch = this.takeBatch();
      this.inFlight = batch.length;
      const outcome = await this.sink.write(this.jobId, batch);
      this.inFlight = 0;
      if (outcome === 'retry' && this.sink.isConnected()) failures++;
      if (outcome === 'ok' || failures >= PERMANENT_FAILURES_BEFORE_GAP) {
        // Redis is up and keeps refusing these events: give them up, loudly, rather than
        // stall the run forever.
        if (outcome !== 'ok') batch.forEach((event) => this.drop(event.seq, 'publish-failed'));
        failures = 0;
        this.release(this.queue.splice(0, batch.length));
        this.releaseWaiters();
        // Counted once out of the queue: a discard meanwhile finds it written, not pending. A
        // batch given up is counted too: it may be in the history all the same (written, and
        // then too few replicas had it), and counting one that is not only trims a little early.
        await this.keep(batch);
      } else {
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
      }
    }
  }

  /**
   * Counts a written batch against historyMaxBytes. Past it, the oldest entries go, down to
   * three quarters of it (so that a flood trims now and then, not after every batch): this
   * attempt's oldest batches, and with the first trim every entry of earlier attempts. Readers
   * see what went as a trimmed gap, as with the stream's MAXLEN.
   */
  private async keep(batch: readonly PendingEvent[]): Promise<void> {
    const first = batch[0];
    if (first === undefined) return;
    const bytes = batch.reduce((sum, event) => sum + storedBytes(event), 0);
    this.kept.push({ first: first.seq, bytes });
    this.keptBytes += bytes;
    if (this.kept.length > KEPT_RECORDS) this.coarsen();
    const max = this.sink.historyMaxBytes;
    // Another worker's job now (see discard): its history is not this attempt's to trim.
    if (this.keptBytes <= max || this.discarded) return;
    let dropped = 0;
    let left = this.keptBytes;
    while (dropped < this.kept.length - 1 && left > max * 0.75) {
      left -= this.kept[dropped]?.bytes ?? 0;
      dropped++;
    }
    const from = this.kept[dropped]?.first ?? first.seq;
    // Counted as gone only once Redis says so: a failed trim is tried again after the next batch.
    if (!(await this.sink.trim(this.jobId, from))) return;
    this.kept.splice(0, dropped);
    this.keptBytes = left;
  }

  /**
   * Merges neighbouring records of kept batches: a run at a human pace writes each event as a
   * batch of its own, and a record for each would grow for as long as the run (under the cap, by
   * up to a record per 100 bytes kept). Trims then go by twice as large steps.
   */
  private coarsen(): void {
    const merged: { first: number; bytes: number }[] = [];
    for (const [index, record] of this.kept.entries()) {
      const earlier = index % 2 === 1 ? merged.at(-1) : undefined;
      if (earlier) earlier.bytes += record.bytes;
      else merged.push({ ...record });
    }
    this.kept = merged;
  }

  private takeBatch(): PendingEvent[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < BATCH_EVENTS) {
      const next = this.queue[count] as PendingEvent;
      if (count > 0 && bytes + next.json.length > BATCH_BYTES) break;
      bytes += next.json.length;
      count++;
    }
    return this.queue.slice(0, count);
  }
}

let lastTime = NaN;
let lastIso = '';

/**
 * `time` as an ISO string. A flood prints many lines within a millisecond, and formatting the
 * same time again cost a third of the event's own JSON.
 */
function isoTime(time: number): string {
  if (time !== lastTime) {
    lastTime = time;
    lastIso = new Date(time).toISOString();
  }
  return lastIso;
}

/**
 * What an event waiting in memory takes there besides its text: its objects and arrays (about
 * 400 bytes, measured with lines of 200 bytes to 100 kB held while Redis was away).
 */
const EVENT_HELD_BYTES = 400;

/**
 * About the memory an event waiting to be written holds: its JSON and its history entry (see
 * EventSink.bufferBytes). Lengths, not UTF-8 byte counts: a flood counts every event.
 */
function heldBytes(event: PendingEvent): number {
  let bytes = EVENT_HELD_BYTES + event.json.length;
  for (const field of event.stored) bytes += typeof field === 'number' ? 8 : field.length;
  return bytes;
}

/** About what an event's entry takes in the history: its fields and values, in bytes. */
function storedBytes(event: PendingEvent): number {
  return event.stored.reduce<number>(
    (sum, field) => sum + (typeof field === 'number' ? 8 : Buffer.byteLength(field)),
    0,
  );
}

/** Adds seq to sorted, disjoint ranges, merging neighbours. */
function insertIntoRanges(ranges: SeqRange[], seq: number): void {
  const index = ranges.findIndex((range) => seq <= range.to + 1);
  const at = ranges[index];
  if (!at) {
    ranges.push({ from: seq, to: seq });
  } else if (seq >= at.from - 1) {
    at.from = Math.min(at.from, seq);
    at.to = Math.max(at.to, seq);
    const next = ranges[index + 1];
    if (next && next.from <= at.to + 1) {
      at.to = Math.max(at.to, next.to);
      ranges.splice(index + 1, 1);
    }
  } else {
    ranges.splice(index, 0, { from: seq, to: seq });
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function hasKeys(value: object): boolean {
  return Object.values(value).some((v) => v !== undefined);
}

function asWritten<T extends string | number | Buffer>(value: T): T | Buffer {
  return typeof value === 'string' && value.length > LONG_TEXT ? Buffer.from(value) : value;
}
