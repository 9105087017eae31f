import type { ExecuteEvent } from './events.js';

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
  const json = value('event');
  if (json !== undefined) return parseJson(json) as ExecuteEvent | null;
  const stdout = value('stdout');
  const content = stdout ?? value('stderr');
  const attempt = Number(value('attempt'));
  const time = Number(value('time'));
  const seq = Number(id.split('-')[0]);
  if (content === undefined || !Number.isInteger(attempt) || !Number.isFinite(time)) return null;
  const data = value('data');
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

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
