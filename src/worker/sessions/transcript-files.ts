import { constants, createReadStream } from 'node:fs';
import { open, opendir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LineSplitter } from '../../executor/index.js';
import { isRecord } from '../../common/records.js';

/** Where a run's CLI keeps its sessions: its config dir, and the cwd that names the project. */
export interface TranscriptPlace {
  readonly configDir: string;
  readonly cwd: string;
  /**
   * The run's own uid, where it has one. Its config dir is its own while it runs, so it could
   * turn its transcript into a link to any file root can read: only a file of this uid is read.
   */
  readonly owner?: number | null;
}

export async function fileSize(path: string): Promise<number | null> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : null;
  } catch {
    return null;
  }
}

/**
 * Project directories looked into, at most, for a transcript that is not where the cwd says. The
 * run owns its config dir: a `projects` of 100,000 entries, listed and looked into on every tick
 * of a session's shipping, held the worker's CPU for hours.
 */
const MAX_PROJECT_DIRS = 100;

/**
 * The transcript's path on this machine, if the CLI wrote one: where the CLI keeps it for `cwd`,
 * else in another project directory of the config dir (among the first MAX_PROJECT_DIRS).
 */
export async function findTranscript(
  place: TranscriptPlace,
  sessionId: string,
): Promise<string | null> {
  const expected = transcriptPath(place, sessionId);
  if ((await fileSize(expected)) !== null) return expected;
  const projects = join(place.configDir, 'projects');
  let looked = 0;
  try {
    for await (const entry of await opendir(projects)) {
      if (++looked > MAX_PROJECT_DIRS) break;
      const candidate = join(projects, entry.name, `${sessionId}.jsonl`);
      if ((await fileSize(candidate)) !== null) return candidate;
    }
  } catch {
    // No projects yet, or not a directory.
  }
  return null;
}

/**
 * Where the CLI looks for a session when it runs in `cwd`: computed here from the session id and
 * the run's own config dir, never taken from stored data.
 */
export function transcriptPath(place: TranscriptPlace, sessionId: string): string {
  return join(place.configDir, 'projects', projectDirName(place.cwd), `${sessionId}.jsonl`);
}

/**
 * The name the CLI gives the project directory of `cwd`: every character but a letter or a digit
 * (each UTF-16 unit) as `-`. A longer name than a file name can be is cut at 200 and told apart
 * by a hash of the whole path (the pinned CLI's own: 31 × h + unit, on 32 bits, in base 36).
 */
export function projectDirName(cwd: string): string {
  const name = cwd.replace(/[^A-Za-z0-9]/g, '-');
  if (name.length <= MAX_PROJECT_NAME) return name;
  let hash = 0;
  for (let i = 0; i < cwd.length; i++) hash = (Math.imul(hash, 31) + cwd.charCodeAt(i)) | 0;
  return `${name.slice(0, MAX_PROJECT_NAME)}-${Math.abs(hash).toString(36)}`;
}

const MAX_PROJECT_NAME = 200;

/** The transcript's size now: where this job's part of a resumed session begins. */
export async function transcriptSize(path: string | null): Promise<number> {
  return path ? ((await fileSize(path)) ?? 0) : 0;
}

/**
 * The transcript at `path` open for reading, with its size, if it is a regular file and, given
 * an `owner`, one of that uid's; else null. No link is followed, nor a FIFO waited on.
 */
export async function openTranscript(
  path: string,
  owner: number | null | undefined,
): Promise<{ readonly file: FileHandle; readonly size: number } | null> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const info = await file.stat().catch(() => null);
  if (info?.isFile() && (owner == null || info.uid === owner)) return { file, size: info.size };
  await file.close();
  return null;
}

/** Bytes [from, to) of an open file. */
export async function readRange(file: FileHandle, from: number, to: number): Promise<Buffer> {
  const buffer = Buffer.alloc(to - from);
  let read = 0;
  while (read < buffer.length) {
    const { bytesRead } = await file.read(buffer, read, buffer.length - read, from + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return buffer.subarray(0, read);
}

/**
 * Whether the transcript, from byte `from` on, records `prompt` as a user message: a retry must
 * neither lose the prompt (the first attempt may have died before the CLI wrote it) nor send it
 * again into a session that already holds it. In a fork, the job's part begins after the copied
 * entry `after` (the session it copied may hold the same prompt); where that entry is not found,
 * anywhere counts. Lines too long to hold the prompt are skipped unread, so a transcript of any
 * shape costs bounded memory.
 */
export async function transcriptHoldsPrompt(
  path: string,
  prompt: string,
  from: number,
  after?: string,
): Promise<boolean> {
  const wanted = prompt.trimEnd();
  let pastCopy = after === undefined;
  let heldInCopy = false;
  // A user line holds the prompt JSON-escaped (at most 6 bytes a character) and some metadata.
  const maxLineBytes = 6 * Buffer.byteLength(wanted) + 64 * 1024;
  const found = await someWholeLine(path, { from, maxLineBytes }, (line) => {
    if (!pastCopy && after !== undefined && line.includes(after)) {
      pastCopy = entryOf(line.toString('utf8'))?.uuid === after;
      if (pastCopy) return false;
    }
    if (!line.includes('"user"')) return false;
    const held = userTexts(line.toString('utf8')).some((text) => text.trimEnd() === wanted);
    heldInCopy ||= held && !pastCopy;
    return held && pastCopy;
  });
  return found || (!pastCopy && heldInCopy);
}

/**
 * The id of the transcript's last entry: a fork's copy of the session holds it, and the fork's
 * own entries follow it. Null when no entry has one (or the file cannot be read).
 */
export async function lastEntryId(path: string): Promise<string | null> {
  let last: string | null = null;
  try {
    await someWholeLine(path, { from: 0, maxLineBytes: LAST_ENTRY_LINE_BYTES }, (line) => {
      if (!line.includes('"uuid"')) return false;
      const id = entryOf(line.toString('utf8'))?.uuid;
      if (typeof id === 'string') last = id;
      return false;
    });
  } catch {
    return null;
  }
  return last;
}

/**
 * Hands each whole line of the file from byte `from` on to `visit` until it says true (then
 * true). A line longer than `maxLineBytes` is skipped unread: memory stays bounded whatever the
 * file's shape.
 */
async function someWholeLine(
  path: string,
  { from, maxLineBytes }: { readonly from: number; readonly maxLineBytes: number },
  visit: (line: Buffer) => boolean,
): Promise<boolean> {
  const splitter = new LineSplitter(maxLineBytes);
  let inLongLine = false;
  const take = (line: { bytes: Buffer; partial: boolean }): boolean => {
    const skip = inLongLine || line.partial;
    inLongLine = line.partial;
    return !skip && visit(line.bytes);
  };
  for await (const chunk of createReadStream(path, { start: from }) as AsyncIterable<Buffer>) {
    if (splitter.push(chunk).some(take)) return true;
  }
  return splitter.end().some(take);
}

/** Longer lines (a tool's huge output) are skipped: the last entry is read for its id alone. */
const LAST_ENTRY_LINE_BYTES = 16 * 1024 * 1024;

function entryOf(line: string): Record<string, unknown> | null {
  try {
    const entry: unknown = JSON.parse(line);
    return isRecord(entry) ? entry : null;
  } catch {
    return null;
  }
}

/** The texts of a transcript line if it is a user message: its content, or each text block. */
function userTexts(line: string): string[] {
  const entry = entryOf(line);
  if (entry?.type !== 'user' || !isRecord(entry.message)) return [];
  const { content } = entry.message;
  if (typeof content === 'string') return [content];
  if (!Array.isArray(content)) return [];
  return content.flatMap((block) =>
    isRecord(block) && block.type === 'text' && typeof block.text === 'string' ? [block.text] : [],
  );
}
