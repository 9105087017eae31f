import type { Change } from '../../workspace/index.js';

/**
 * The most bytes of paths a result lists. A run can touch any number of files, and the result
 * goes whole into the terminal event, the job's return value and BullMQ's event stream, whose
 * cap counts on results of about 2 × MAX_OUTPUT_BYTES.
 */
export const LISTED_PATH_BYTES = 32 * 1024;

export interface ListedPaths {
  readonly changed: string[];
  readonly added: string[];
  readonly deleted: string[];
  /** Paths left out of the three lists, once they held LISTED_PATH_BYTES. */
  readonly pathsOmitted: number;
}

/** The change's paths, changed first, then added and deleted, up to `maxBytes` in all. */
export function listedPaths(change: Change, maxBytes = LISTED_PATH_BYTES): ListedPaths {
  let left = maxBytes;
  let omitted = 0;
  // Once one path does not fit, none after it is listed: each list stays a prefix of the whole.
  const take = (paths: readonly string[]): string[] => {
    const kept: string[] = [];
    for (const path of paths) {
      const bytes = Buffer.byteLength(path);
      if (omitted > 0 || bytes > left) omitted++;
      else {
        kept.push(path);
        left -= bytes;
      }
    }
    return kept;
  };
  const changed = take(change.changed);
  const added = take(change.added);
  const deleted = take(change.deleted);
  return { changed, added, deleted, pathsOmitted: omitted + change.unlisted };
}

/**
 * The lines of a change's summary (`A`, `M`, `D` and the path), up to `maxBytes` in all, then
 * one saying how many more there are: the summary stands in for a patch over that size.
 */
export function summaryLines(change: Change, maxBytes: number): string[] {
  const all = [
    ...change.added.map((path) => `A\t${quoted(path)}`),
    ...change.changed.map((path) => `M\t${quoted(path)}`),
    ...change.deleted.map((path) => `D\t${quoted(path)}`),
  ];
  const lines: string[] = [];
  let bytes = 0;
  for (const line of all) {
    bytes += Buffer.byteLength(line) + 1;
    if (bytes > maxBytes) break;
    lines.push(line);
  }
  const more = all.length - lines.length + change.unlisted;
  if (more > 0) lines.push(`# ... and ${more} more paths`);
  return lines;
}

/**
 * A path as a summary line shows it: quoted, with `\uXXXX` for each control character (C0, DEL
 * and C1) and a backslash before a quote or a backslash, where it holds any of these, as git
 * quotes such names. The run named its files: a raw escape sequence would reach the terminal of
 * whoever reads the summary, and a newline would forge lines.
 */
function quoted(path: string): string {
  if (!UNSAFE.test(path)) return path;
  const escaped = path.replace(UNSAFE_ALL, (char) =>
    char === '"' || char === '\\'
      ? `\\${char}`
      : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `"${escaped}"`;
}

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f"\\]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');
