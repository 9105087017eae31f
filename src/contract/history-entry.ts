import type { ExecuteEvent } from './events.js';
import { isRecord } from '../common/records.js';

/**
 * How an event is kept in a job's history stream (contract version 2). A line of the CLI's
 * output is stored as it is, in a field of its own (`stdout` or `stderr`) beside the attempt and
 * the time in epoch milliseconds: the line is not escaped into JSON again, and lines in a row
 * share their field names, which Redis keeps once per stream node. Every other event (`started`,
 * `gap`, `completed`, `failed`) is one field `event` holding its JSON, as in version 1. The job
 * id comes from the key, the seq from the entry id `<seq>-0`.
 */
export type HistoryFields = (string | number | Buffer)[];

type LineEvent = Extract<ExecuteEvent, { type: 'output' | 'error' }>;

/**
 * The fields and values of `event`'s history entry; `json` is the event's JSON and `time` its
 * timestamp in epoch milliseconds. `printed`: a line's content as the bytes it was printed as.
 */
export function historyFields(
  event: ExecuteEvent,
  json: string,
  time: number,
  printed?: Buffer,
): HistoryFields {
  if (event.type !== 'output' && event.type !== 'error') return ['event', json];
  const fields: HistoryFields = ['attempt', event.attempt, 'time', time];
  fields.push(event.stream, printed ?? event.content);
  if (event.data !== undefined) fields.push('data', JSON.stringify(event.data));
  return fields;
}

/**
 * The event a history entry holds, exactly as it was published; null for an entry that is not
 * an event (unknown fields, unreadable JSON). Entries of version 1 (`event` only) read as well.
 */
export function eventFromHistory(
  jobId: string,
  id: string,
  fields: readonly string[],
): ExecuteEvent | null {
  const values = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2)
    values.set(fields[i] as string, fields[i + 1] as string);
  const value = (name: string): string | undefined => values.get(name);
  const seq = Number(id.split('-')[0]);
  const json = value('event');
  if (json !== undefined) {
    const event = parseJson(json);
    return isEventOf(event, seq) ? (event as ExecuteEvent) : null;
  }
  const stdout = value('stdout');
  const content = stdout ?? value('stderr');
  const attempt = Number(value('attempt'));
  const time = Number(value('time'));
  if (content === undefined || !Number.isInteger(attempt) || !isEpochMs(time)) return null;
  const data = value('data');
  if (data !== undefined && !isRecord(parseJson(data))) return null;
  const line = {
    jobId,
    attempt,
    seq,
    timestamp: new Date(time).toISOString(),
    ...(stdout !== undefined
      ? { type: 'output', stream: 'stdout', content }
      : { type: 'error', stream: 'stderr', content }),
    ...(data === undefined ? {} : { data: parseJson(data) }),
  };
  return line as LineEvent;
}

/**
 * The event a live message carries, or null for one that is not an event (someone else
 * published on the channel): as for the history, what readers rely on is checked.
 */
export function eventFromMessage(message: string, jobId: string): ExecuteEvent | null {
  const event = parseJson(message);
  if (!isRecord(event) || !Number.isSafeInteger(event.seq) || (event.seq as number) < 1) {
    return null;
  }
  // Each job has a channel of its own: an event of another job is no event of this one.
  if (event.jobId !== jobId) return null;
  return isEventOf(event, event.seq as number) ? (event as ExecuteEvent) : null;
}

/** The largest time a Date holds: past it toISOString throws. */
const MAX_DATE_MS = 8.64e15;

const isEpochMs = (time: number): boolean => Number.isFinite(time) && Math.abs(time) <= MAX_DATE_MS;

/** Events whose data every reader looks into (a terminal event's `retrying`, say). */
const WITH_DATA = new Set(['started', 'gap', 'completed', 'failed']);

/**
 * Whether `value` is shaped as the event of the entry with this seq: what readers rely on (its
 * seq, attempt, type and data), not every field, so that an older or newer worker's events read.
 * An entry another client wrote otherwise (a seq that is no number) would derail them.
 */
function isEventOf(value: unknown, seq: number): boolean {
  if (!isRecord(value) || value.seq !== seq || !Number.isInteger(value.attempt)) return false;
  if (typeof value.jobId !== 'string' || typeof value.timestamp !== 'string') return false;
  if (value.type === 'output' || value.type === 'error') return typeof value.content === 'string';
  return WITH_DATA.has(String(value.type)) && isRecord(value.data);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
