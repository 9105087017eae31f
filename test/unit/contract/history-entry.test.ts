import { describe, expect, it } from 'vitest';
import { eventFromHistory, historyFields, type ExecuteEvent } from '../../../src/contract/index.js';

const envelope = { jobId: 'job-1', attempt: 2, seq: 7, timestamp: '2026-01-02T03:04:05.678Z' };

/** What XRANGE answers for the entry the worker writes: every value as a string. */
function stored(event: ExecuteEvent): string[] {
  return historyFields(event, JSON.stringify(event), Date.parse(event.timestamp)).map(String);
}

describe('history entries', () => {
  const lines: Extract<ExecuteEvent, { type: 'output' | 'error' }>[] = [
    { ...envelope, type: 'output', stream: 'stdout', content: '{"type":"assistant","n":"é"}' },
    { ...envelope, type: 'error', stream: 'stderr', content: 'warning: data' },
    { ...envelope, type: 'output', stream: 'stdout', content: 'data', data: { partial: true } },
    {
      ...envelope,
      type: 'output',
      stream: 'stdout',
      content: '//5B',
      data: { encoding: 'base64' },
    },
  ];

  it.each(lines.map((event) => [event.content, event]))(
    'stores the line %j raw and reads back the event that was published',
    (_content, event) => {
      const fields = stored(event);
      expect(fields.slice(0, 6)).toEqual([
        'attempt',
        '2',
        'time',
        String(Date.parse(envelope.timestamp)),
        event.type === 'output' ? 'stdout' : 'stderr',
        event.content,
      ]);
      const back = eventFromHistory('job-1', '7-0', fields);
      expect(back).toEqual(event);
      expect(JSON.stringify(back)).toBe(JSON.stringify(event));
    },
  );

  it('keeps every other event as its JSON, and reads entries of version 1', () => {
    const gap: ExecuteEvent = {
      ...envelope,
      type: 'gap',
      data: { ranges: [{ from: 3, to: 6 }], count: 4, reason: 'buffer-overflow' },
    };
    expect(stored(gap)).toEqual(['event', JSON.stringify(gap)]);
    expect(eventFromHistory('job-1', '7-0', stored(gap))).toEqual(gap);
    const v1 = lines[0] as ExecuteEvent;
    expect(eventFromHistory('job-1', '7-0', ['event', JSON.stringify(v1)])).toEqual(v1);
  });

  it('reads an entry that holds no event as null', () => {
    expect(eventFromHistory('job-1', '1-0', ['event', '{not json'])).toBeNull();
    expect(eventFromHistory('job-1', '1-0', ['something', 'else'])).toBeNull();
    expect(
      eventFromHistory('job-1', '1-0', ['attempt', 'x', 'time', '1', 'stdout', 'a']),
    ).toBeNull();
  });

  it('reads as null an entry another client wrote that readers could not go by', () => {
    const output = { ...envelope, type: 'output', stream: 'stdout', content: 'x' };
    const bad: [string, string][] = [
      ['a seq that is no number', JSON.stringify({ ...output, seq: 'x' })],
      ['a seq other than its id', JSON.stringify({ ...output, seq: 8 })],
      ['a fractional attempt', JSON.stringify({ ...output, attempt: 1.5 })],
      ['a terminal event without data', JSON.stringify({ ...envelope, type: 'completed' })],
      ['an unknown type', JSON.stringify({ ...envelope, type: 'other', data: {} })],
      ['no object', '[7]'],
    ];
    for (const [what, json] of bad) {
      expect(eventFromHistory('job-1', '7-0', ['event', json]), what).toBeNull();
    }
    // A time no Date holds, and data that is no object.
    const line = ['attempt', '1', 'time', '1e20', 'stdout', 'a'];
    expect(eventFromHistory('job-1', '7-0', line)).toBeNull();
    const data = ['attempt', '1', 'time', '1', 'stdout', 'a', 'data', '5'];
    expect(eventFromHistory('job-1', '7-0', data)).toBeNull();
    // Fields a newer worker adds do not make an event unreadable.
    const newer = { ...envelope, type: 'gap', data: { ranges: [], count: 0 }, extra: true };
    expect(eventFromHistory('job-1', '7-0', ['event', JSON.stringify(newer)])).toEqual(newer);
  });
});
