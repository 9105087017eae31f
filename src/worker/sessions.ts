import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { sessionKey, type QueueAddress } from '../contract/index.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Where a run's CLI keeps its sessions: its config dir, and the cwd that names the project. */
export interface TranscriptPlace {
  readonly configDir: string;
  readonly cwd: string;
}

/** Keeps session transcripts beyond the run that wrote them. */
export interface TranscriptStore {
  /** Copies the run's transcript to the store if it grew since the last save. */
  save(sessionId: string, place: TranscriptPlace): Promise<void>;
  /**
   * Puts the stored transcript in the run's config dir when the store holds more of it than
   * the local copy (or there is none). Returns the local path afterwards, or null.
   */
  restore(sessionId: string, place: TranscriptPlace): Promise<string | null>;
  forget(sessionId: string): void;
}

/** The transcript's path on this machine, if the CLI wrote one. */
export async function findTranscript(configDir: string, sessionId: string): Promise<string | null> {
  const projects = join(configDir, 'projects');
  let dirs: string[];
  try {
    dirs = await readdir(projects);
  } catch {
    return null;
  }
  for (const dir of dirs) {
    const candidate = join(projects, dir, `${sessionId}.jsonl`);
    if (await fileSize(candidate)) return candidate;
  }
  return null;
}

/**
 * Where the CLI looks for a session when it runs in `cwd`: computed here from the session id and
 * the run's own config dir, never taken from stored data.
 */
export function transcriptPath(place: TranscriptPlace, sessionId: string): string {
  return join(
    place.configDir,
    'projects',
    place.cwd.replace(/[^A-Za-z0-9]/g, '-'),
    `${sessionId}.jsonl`,
  );
}

/**
 * Makes Claude sessions portable between workers. The CLI keeps a session as a transcript file
 * under its config dir (`projects/<slug of cwd>/<session id>.jsonl`) on the machine that ran
 * it; `--resume` elsewhere finds nothing. So the transcript goes to Redis when an attempt ends
 * (and now and then while it runs), and comes back before a `--resume` on whichever worker
 * runs the next attempt. Transcripts only grow, so the longer copy is the newer one.
 */
export class SessionStore implements TranscriptStore {
  private readonly savedBytes = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly address: QueueAddress,
    private readonly ttlSeconds: number,
  ) {}

  async save(sessionId: string, place: TranscriptPlace): Promise<void> {
    const path = await findTranscript(place.configDir, sessionId);
    if (path === null) return;
    const data = await readFile(path);
    if (this.savedBytes.get(sessionId) === data.length) return;
    const key = sessionKey(this.address, sessionId);
    await this.redis
      .multi()
      .hset(key, { bytes: data.length, data: await gzipAsync(data) })
      .expire(key, this.ttlSeconds)
      .exec();
    this.savedBytes.set(sessionId, data.length);
  }

  async restore(sessionId: string, place: TranscriptPlace): Promise<string | null> {
    const key = sessionKey(this.address, sessionId);
    const local = await findTranscript(place.configDir, sessionId);
    const localBytes = local ? ((await fileSize(local)) ?? 0) : 0;
    const storedBytes = Number((await this.redis.hget(key, 'bytes')) ?? 0);
    if (storedBytes <= localBytes) return local;
    const data = await this.redis.hgetBuffer(key, 'data');
    if (data === null) return local;
    const target = local ?? transcriptPath(place, sessionId);
    try {
      const transcript = await gunzipAsync(data);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, transcript);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(`could not restore session ${sessionId} from Redis: ${why}`, {
        cause: error,
      });
    }
    this.savedBytes.set(sessionId, storedBytes);
    return target;
  }

  forget(sessionId: string): void {
    this.savedBytes.delete(sessionId);
  }
}

/**
 * Keeps transcripts in a directory of the worker's own (RUN_ROOT/sessions), for isolated runs
 * whose homes are removed when they end and SESSION_STORE=off: a later job on this host can
 * still resume the session it names.
 */
export class LocalTranscripts implements TranscriptStore {
  constructor(private readonly dir: string) {}

  async save(sessionId: string, place: TranscriptPlace): Promise<void> {
    const path = await findTranscript(place.configDir, sessionId);
    if (path === null) return;
    const kept = join(this.dir, `${sessionId}.jsonl`);
    if (((await fileSize(path)) ?? 0) <= ((await fileSize(kept)) ?? 0)) return;
    await copyFile(path, kept);
  }

  async restore(sessionId: string, place: TranscriptPlace): Promise<string | null> {
    const local = await findTranscript(place.configDir, sessionId);
    const kept = join(this.dir, `${sessionId}.jsonl`);
    const keptBytes = (await fileSize(kept)) ?? 0;
    if (keptBytes <= (local ? ((await fileSize(local)) ?? 0) : 0)) return local;
    const target = local ?? transcriptPath(place, sessionId);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(kept, target);
    return target;
  }

  forget(): void {
    // Nothing cached in memory.
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : null;
  } catch {
    return null;
  }
}

/** The transcript's size now: where this job's part of a resumed session begins. */
export async function transcriptSize(path: string | null): Promise<number> {
  return path ? ((await fileSize(path)) ?? 0) : 0;
}

/**
 * Whether the transcript, from byte `from` on, records `prompt` as a user message: a retry must
 * neither lose the prompt (the first attempt may have died before the CLI wrote it) nor send it
 * again into a session that already holds it.
 */
export async function transcriptHoldsPrompt(
  path: string,
  prompt: string,
  from: number,
): Promise<boolean> {
  const wanted = prompt.trimEnd();
  const lines = createInterface({
    input: createReadStream(path, { start: from }),
    crlfDelay: Infinity,
  });
  try {
    for await (const line of lines) {
      if (!line.includes('"user"')) continue;
      if (userTexts(line).some((text) => text.trimEnd() === wanted)) return true;
    }
  } finally {
    lines.close();
  }
  return false;
}

/** The texts of a transcript line if it is a user message: its content, or each text block. */
function userTexts(line: string): string[] {
  let entry: unknown;
  try {
    entry = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isRecord(entry) || entry.type !== 'user' || !isRecord(entry.message)) return [];
  const { content } = entry.message;
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  return content.flatMap((block) =>
    isRecord(block) && block.type === 'text' && typeof block.text === 'string' ? [block.text] : [],
  );
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
