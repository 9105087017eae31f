import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { sessionKey, type QueueAddress } from '../contract/index.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Makes Claude sessions portable between workers. The CLI keeps a session as a transcript file
 * under its config dir (`projects/<slug of cwd>/<session id>.jsonl`) on the machine that ran
 * it; `--resume` elsewhere finds nothing. So the transcript goes to Redis when an attempt ends
 * (and now and then while it runs), and comes back before a `--resume` on whichever worker
 * runs the next attempt. Transcripts only grow, so the longer copy is the newer one.
 */
export class SessionStore {
  private readonly savedBytes = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly address: QueueAddress,
    /** The CLI's config dir as the runs see it (CLAUDE_CONFIG_DIR, else ~/.claude). */
    private readonly configDir: string,
    private readonly ttlSeconds: number,
  ) {}

  /** The transcript's path on this machine, if the CLI wrote one. */
  async findTranscript(sessionId: string): Promise<string | null> {
    const projects = join(this.configDir, 'projects');
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

  /** Copies the local transcript to Redis if it grew since the last save. */
  async save(sessionId: string): Promise<void> {
    const path = await this.findTranscript(sessionId);
    if (path === null) return;
    const data = await readFile(path);
    if (this.savedBytes.get(sessionId) === data.length) return;
    const key = sessionKey(this.address, sessionId);
    await this.redis
      .multi()
      .hset(key, {
        path: relative(this.configDir, path),
        bytes: data.length,
        data: await gzipAsync(data),
      })
      .expire(key, this.ttlSeconds)
      .exec();
    this.savedBytes.set(sessionId, data.length);
  }

  /**
   * Puts the transcript from Redis on this machine when Redis holds more of it than the local
   * copy (or there is none). Returns the local path afterwards, or null if neither has it.
   */
  async restore(sessionId: string): Promise<string | null> {
    const key = sessionKey(this.address, sessionId);
    const local = await this.findTranscript(sessionId);
    const localBytes = local ? ((await fileSize(local)) ?? 0) : 0;
    const storedBytes = Number((await this.redis.hget(key, 'bytes')) ?? 0);
    if (storedBytes <= localBytes) return local;
    const [path, data] = await Promise.all([
      this.redis.hget(key, 'path'),
      this.redis.hgetBuffer(key, 'data'),
    ]);
    if (path === null || data === null) return local;
    const target = local ?? join(this.configDir, path);
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
