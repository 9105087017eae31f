import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { appendFile, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip, gzip } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import type { Cluster, Redis } from 'ioredis';
import { sessionKey, type QueueAddress } from '../../contract/index.js';
import {
  fileSize,
  findTranscript,
  openTranscript,
  readRange,
  transcriptPath,
  type TranscriptPlace,
} from './transcript-files.js';
import { errorMessage } from '../../common/errors.js';
import { evalFenced, fenceCheck, type WriteFence } from '../../redis/write-fence.js';

export {
  lastEntryId,
  transcriptHoldsPrompt,
  transcriptSize,
  type TranscriptPlace,
} from './transcript-files.js';

const gzipAsync = promisify(gzip);

/** A session as the store knows it: its id within the scope of the jobs allowed to resume it. */
export interface SessionRef {
  readonly scope: string;
  readonly sessionId: string;
}

/** A stored transcript could not be put back: the message says why. */
export class SessionRestoreError extends Error {
  override readonly name = 'SessionRestoreError';
}

export type Restored =
  /**
   * The run's config dir holds the session (restored or already there) at `path`; the store
   * held `stored` bytes of it, from which a shipper goes on.
   */
  | { readonly kind: 'found'; readonly path: string; readonly stored: number }
  /** Neither the store nor the run's config dir has it. */
  | { readonly kind: 'missing' }
  /** It outgrew SESSION_MAX_BYTES and was no longer kept: a retry starts a new session. */
  | { readonly kind: 'oversized'; readonly bytes: number };

/** How many bytes of a transcript a sink holds, and whether it gave up on it as too large. */
export interface StoredTranscript {
  readonly bytes: number;
  readonly oversized: boolean;
  /**
   * What holds those bytes in the sink's own form (Redis: their gzip members), where it says:
   * a restore reads that much, as another run of the session may append meanwhile.
   */
  readonly packedBytes?: number;
}

/** Where transcripts are kept beyond the run that wrote them (Redis, or a worker's directory). */
export interface TranscriptSink {
  stored(ref: SessionRef): Promise<StoredTranscript>;
  /**
   * Appends bytes [offset, offset + chunk.length) if it holds exactly `offset`, else says what it
   * holds; `fenced` where the fence no longer holds.
   */
  append(
    ref: SessionRef,
    offset: number,
    chunk: Buffer,
    fence?: WriteFence,
  ): Promise<number | 'ok' | 'fenced'>;
  /**
   * Gives the transcript up as too large (`bytes` long), if it holds no more than `offset` (what
   * this run shipped): else says what it holds, as append does; `fenced` where the fence no
   * longer holds. A run behind another, or whose job moved on, never drops what that one saved.
   */
  markOversized(
    ref: SessionRef,
    bytes: number,
    offset: number,
    fence?: WriteFence,
  ): Promise<number | 'ok' | 'fenced'>;
  /**
   * Writes the transcript as `stored` found it to `target`, streaming; throws if it is not
   * `stored.bytes` long.
   */
  copyTo(ref: SessionRef, target: string, stored: StoredTranscript): Promise<void>;
}

/**
 * Makes Claude sessions outlive the run and the machine that wrote them. The CLI keeps a session
 * as an append-only JSONL transcript under its config dir; a shipper sends what it appended to a
 * sink while the run goes on, and a later attempt (or a job resuming the session) gets it back,
 * on whichever worker, in its own config dir. Transcripts only grow: the longer copy is newer.
 */
export class SessionStore {
  constructor(
    private readonly sink: TranscriptSink,
    /** SESSION_MAX_BYTES: past it a transcript is no longer kept, nor ever restored. */
    readonly maxBytes: number,
  ) {}

  async restore(ref: SessionRef, place: TranscriptPlace): Promise<Restored> {
    const local = await findTranscript(place, ref.sessionId);
    const localBytes = local ? ((await fileSize(local)) ?? 0) : 0;
    const stored = await this.sink.stored(ref);
    if (stored.oversized) return { kind: 'oversized', bytes: stored.bytes };
    if (stored.bytes <= localBytes)
      return local ? { kind: 'found', path: local, stored: stored.bytes } : { kind: 'missing' };
    if (stored.bytes > this.maxBytes) {
      throw new SessionRestoreError(
        `session ${ref.sessionId} is stored with ${stored.bytes} bytes, over SESSION_MAX_BYTES (${this.maxBytes}): not restored`,
      );
    }
    const target = local ?? transcriptPath(place, ref.sessionId);
    const partial = `${target}.restoring`;
    await mkdir(dirname(target), { recursive: true });
    try {
      await this.sink.copyTo(ref, partial, stored);
      await rename(partial, target);
    } catch (error) {
      await rm(partial, { force: true });
      const why = errorMessage(error);
      throw new SessionRestoreError(`could not restore session ${ref.sessionId}: ${why}`, {
        cause: error,
      });
    }
    return { kind: 'found', path: target, stored: stored.bytes };
  }

  /**
   * Starts keeping the transcript a run writes, as it grows, from byte `from`: what the store
   * held of it when the run's copy was restored (0 for a new session). Bytes the store got from
   * another run since are a conflict, never written over.
   */
  shipper(
    ref: SessionRef,
    place: TranscriptPlace,
    from: number,
    fence?: WriteFence,
  ): TranscriptShipper {
    return new TranscriptShipper(this.sink, ref, place, this.maxBytes, from, fence);
  }
}

/** Bytes of a transcript sent in one append: a long backlog goes in several. */
const SHIP_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Sends what a run's transcript grew by since the last call: one open and stat when nothing
 * changed, and only the appended bytes when something did, never the whole file.
 */
export class TranscriptShipper {
  private path: string | null = null;
  /** Where the next append starts: the store is taken to hold the transcript up to here. */
  private offset: number;
  /** Why shipping stopped for good, once it did (`fenced`: the job is no longer the run's). */
  stopped: 'oversized' | 'conflict' | 'fenced' | null = null;
  /** Bytes of the transcript the sink holds. */
  get shipped(): number {
    return this.offset;
  }

  constructor(
    private readonly sink: TranscriptSink,
    private readonly ref: SessionRef,
    private readonly place: TranscriptPlace,
    private readonly maxBytes: number,
    from: number,
    private readonly fence?: WriteFence,
  ) {
    this.offset = from;
  }

  async ship(): Promise<void> {
    if (this.stopped !== null) return;
    this.path ??= await findTranscript(this.place, this.ref.sessionId);
    if (this.path === null) return;
    const opened = await openTranscript(this.path, this.place.owner);
    if (opened === null) {
      // Gone, or not the run's own file: looked for again next time.
      this.path = null;
      return;
    }
    try {
      await this.shipFrom(opened.file, opened.size);
    } finally {
      await opened.file.close();
    }
  }

  private async shipFrom(file: FileHandle, size: number): Promise<void> {
    if (size > this.maxBytes) {
      const answer = await this.sink.markOversized(this.ref, size, this.offset, this.fence);
      this.stopped = answer === 'ok' ? 'oversized' : answer === 'fenced' ? 'fenced' : 'conflict';
      return;
    }
    while (this.offset < size) {
      const end = Math.min(size, this.offset + SHIP_CHUNK_BYTES);
      const chunk = await readRange(file, this.offset, end);
      const answer = await this.sink.append(this.ref, this.offset, chunk, this.fence);
      if (answer === 'fenced') {
        this.stopped = 'fenced';
        return;
      }
      if (answer === 'ok') this.offset = end;
      else if (answer < this.offset)
        this.offset = answer; // the sink lost a tail: send it again
      else {
        // Someone else wrote more of this session than this run has: never interleave.
        this.stopped = 'conflict';
        return;
      }
    }
  }
}

/** Checks a restored stream: never more bytes than the store said it holds (a gzip bomb). */
function capped(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(new Error(`it holds more than the ${limit} bytes recorded for it`));
      else done(null, chunk);
    },
    flush(done) {
      done(seen === limit ? null : new Error(`it holds ${seen} bytes, not the ${limit} recorded`));
    },
  });
}

const APPEND_SCRIPT = `
${fenceCheck(3, 5, '-2')}
local held = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if held ~= tonumber(ARGV[1]) then return held end
local packed = redis.call('APPEND', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'bytes', ARGV[3], 'packed', ARGV[3] .. ':' .. packed)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return -1
`;

/** APPEND_SCRIPT's checks, then the transcript given up as too large: its data gone, its size kept. */
const OVERSIZED_SCRIPT = `
${fenceCheck(3, 4, '-2')}
local held = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
if held > tonumber(ARGV[1]) then return held end
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[1], 'packed')
redis.call('HSET', KEYS[1], 'bytes', ARGV[2], 'oversized', '1')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return -1
`;

/** A count a hash field holds, 0 where it holds none or something else. */
function wholeCount(field: string | null | undefined): number {
  const count = Number(field ?? 0);
  return Number.isSafeInteger(count) && count > 0 ? count : 0;
}

/** What APPEND_SCRIPT or OVERSIZED_SCRIPT answered: -1 done, -2 fenced, else what is held. */
function scriptAnswer(answer: number): number | 'ok' | 'fenced' {
  if (answer === -2) return 'fenced';
  return answer === -1 ? 'ok' : answer;
}

/** Bytes read from Redis at a time while a transcript is restored. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Transcripts in Redis: `<session key>` a hash with the byte count, `<session key>:data` the
 * transcript as gzip members, one per append (a gzip stream may hold many). Every key expires
 * SESSION_TTL_SECONDS after the last append.
 */
export class RedisTranscripts implements TranscriptSink {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly address: QueueAddress,
    private readonly ttlSeconds: number,
  ) {}

  private keys(ref: SessionRef): { meta: string; data: string } {
    const meta = sessionKey(this.address, ref.sessionId, ref.scope);
    return { meta, data: `${meta}:data` };
  }

  async stored(ref: SessionRef): Promise<StoredTranscript> {
    const [bytes, oversized, packed] = await this.redis.hmget(
      this.keys(ref).meta,
      'bytes',
      'oversized',
      'packed',
    );
    const count = wholeCount(bytes);
    // `<bytes>:<length>`, of the bytes it was written with. An older worker's append leaves it
    // behind them (or leaves none): the restore then reads the data whole, as that one did.
    const [packedFor, packedLength] = (packed ?? '').split(':');
    const packedBytes = wholeCount(packedLength);
    return {
      bytes: count,
      oversized: oversized === '1',
      ...(packedBytes > 0 && wholeCount(packedFor) === count ? { packedBytes } : {}),
    };
  }

  async append(
    ref: SessionRef,
    offset: number,
    chunk: Buffer,
    fence?: WriteFence,
  ): Promise<number | 'ok' | 'fenced'> {
    const { meta, data } = this.keys(ref);
    const packed = await gzipAsync(chunk);
    const args = [offset, packed, offset + chunk.length, this.ttlSeconds];
    return scriptAnswer(await evalFenced(this.redis, APPEND_SCRIPT, [meta, data], args, fence));
  }

  async markOversized(
    ref: SessionRef,
    bytes: number,
    offset: number,
    fence?: WriteFence,
  ): Promise<number | 'ok' | 'fenced'> {
    const { meta, data } = this.keys(ref);
    const args = [offset, bytes, this.ttlSeconds];
    return scriptAnswer(await evalFenced(this.redis, OVERSIZED_SCRIPT, [meta, data], args, fence));
  }

  async copyTo(ref: SessionRef, target: string, stored: StoredTranscript): Promise<void> {
    const { data } = this.keys(ref);
    const length = stored.packedBytes ?? (await this.redis.strlen(data));
    const redis = this.redis;
    async function* pieces(): AsyncGenerator<Buffer> {
      for (let at = 0; at < length; at += READ_CHUNK_BYTES) {
        yield await redis.getrangeBuffer(data, at, Math.min(length, at + READ_CHUNK_BYTES) - 1);
      }
    }
    await pipeline(
      Readable.from(pieces()),
      createGunzip(),
      capped(stored.bytes),
      createWriteStream(target),
    );
  }
}

/** How often a LocalTranscripts looks for transcripts past their time, at most. */
const PRUNE_EVERY_MS = 3600 * 1000;

/**
 * Transcripts in a directory of the worker's own (RUN_ROOT/sessions): for isolated runs, whose
 * homes go when they end, when SESSION_STORE=off. Each goes `ttlSeconds` after its last change,
 * as Redis expires its keys: looked for when sessions are used, at most once an hour.
 */
export class LocalTranscripts implements TranscriptSink {
  private prunedAt = -Infinity;
  /** The last step under way on each transcript file (see inTurn). */
  private readonly turns = new Map<string, Promise<void>>();

  constructor(
    private readonly dir: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  private async pruneOld(): Promise<void> {
    const now = this.now();
    if (now - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now;
    for (const name of await readdir(this.dir).catch(() => [])) {
      const path = join(this.dir, name);
      const stats = await lstat(path).catch(() => null);
      if (stats?.isFile() && now - stats.mtimeMs > this.ttlSeconds * 1000) {
        await rm(path, { force: true });
      }
    }
  }

  private file(ref: SessionRef): string {
    const scope = createHash('sha256').update(ref.scope).digest('hex').slice(0, 16);
    return join(this.dir, `${scope}-${ref.sessionId}.jsonl`);
  }

  async stored(ref: SessionRef): Promise<StoredTranscript> {
    await this.pruneOld();
    const oversized = await fileSize(`${this.file(ref)}.oversized`);
    return { bytes: (await fileSize(this.file(ref))) ?? 0, oversized: oversized !== null };
  }

  async append(ref: SessionRef, offset: number, chunk: Buffer): Promise<number | 'ok'> {
    return this.inTurn(ref, async () => {
      const held = (await fileSize(this.file(ref))) ?? 0;
      if (held !== offset) return held;
      await appendFile(this.file(ref), chunk);
      return 'ok' as const;
    });
  }

  async markOversized(ref: SessionRef, bytes: number, offset: number): Promise<number | 'ok'> {
    return this.inTurn(ref, async () => {
      const held = (await fileSize(this.file(ref))) ?? 0;
      if (held > offset) return held;
      await rm(this.file(ref), { force: true });
      await writeFile(`${this.file(ref)}.oversized`, String(bytes));
      return 'ok' as const;
    });
  }

  /**
   * Runs `step` once the session's steps before it are done: what a transcript holds is read and
   * then appended to in two calls, which two runs of one session on this worker must not
   * interleave (each would append after the same length).
   */
  private inTurn<T>(ref: SessionRef, step: () => Promise<T>): Promise<T> {
    const key = this.file(ref);
    const mine = (this.turns.get(key) ?? Promise.resolve()).then(step);
    const done = mine.then(
      () => undefined,
      () => undefined,
    );
    this.turns.set(key, done);
    void done.then(() => {
      if (this.turns.get(key) === done) this.turns.delete(key);
    });
    return mine;
  }

  async copyTo(ref: SessionRef, target: string, { bytes }: StoredTranscript): Promise<void> {
    // The bytes the file had when looked at: another run of the session may append meanwhile.
    const head = createReadStream(this.file(ref), { end: Math.max(0, bytes - 1) });
    await pipeline(head, capped(bytes), createWriteStream(target));
  }
}
