import { describe, expect, it } from 'vitest';
import {
  decodeLine,
  LineSplitter,
  utf8Boundary,
  type RawLine,
} from '../../../src/executor/lines.js';

const MiB = 1024 * 1024;
const text = (lines: RawLine[]): [string, boolean][] =>
  lines.map((line) => [line.bytes.toString('utf8'), line.partial]);

describe('LineSplitter', () => {
  it('splits on newlines, keeping empty lines and joining a line cut across chunks', () => {
    const splitter = new LineSplitter(1024);
    const lines = [
      ...splitter.push(Buffer.from('one\n\ntw')),
      ...splitter.push(Buffer.from('o\nthr')),
      ...splitter.push(Buffer.from('ee')),
      ...splitter.push(Buffer.from('\n')),
    ];
    expect(text(lines)).toEqual([
      ['one', false],
      ['', false],
      ['two', false],
      ['three', false],
    ]);
    expect(splitter.end()).toEqual([]);
  });

  it('hands out a last line that has no newline when the stream ends', () => {
    const splitter = new LineSplitter(1024);
    expect(text(splitter.push(Buffer.from('done\nno newline')))).toEqual([['done', false]]);
    expect(text(splitter.end())).toEqual([['no newline', false]]);
    expect(splitter.end()).toEqual([]);
  });

  it('splits a 20 MiB line into pieces no longer than the limit, never inside a UTF-8 character', () => {
    const limit = MiB;
    // 3-byte characters: a cut at the limit would fall inside one every time.
    const line = Buffer.from('€'.repeat(Math.ceil((20 * MiB) / 3)));
    const splitter = new LineSplitter(limit);
    const pieces: RawLine[] = [];
    // As a pipe delivers it: 64 KiB chunks, the newline in the last one.
    for (let at = 0; at < line.length; at += 64 * 1024) {
      pieces.push(...splitter.push(line.subarray(at, at + 64 * 1024)));
    }
    pieces.push(...splitter.push(Buffer.from('\nnext\n')));

    const next = pieces.pop();
    expect(next?.bytes.toString()).toBe('next');
    expect(pieces.length).toBeGreaterThanOrEqual(20);
    expect(pieces.every((piece) => piece.bytes.length <= limit)).toBe(true);
    expect(pieces.slice(0, -1).every((piece) => piece.partial)).toBe(true);
    expect(pieces.at(-1)?.partial).toBe(false);
    // Its last piece is marked as the end of a line that came in pieces; the next line is not.
    expect(pieces.map((piece) => piece.tail ?? false)).toEqual(
      pieces.map((_, i) => i === pieces.length - 1),
    );
    expect(next?.tail).toBeUndefined();
    expect(pieces.every((piece) => decodeLine(piece.bytes).encoding === undefined)).toBe(true);
    expect(Buffer.concat(pieces.map((piece) => piece.bytes)).equals(line)).toBe(true);
  });

  it('cuts a long line given in one chunk the same way', () => {
    const splitter = new LineSplitter(1024);
    const line = 'é'.repeat(3000); // 6000 bytes of 2-byte characters
    const pieces = splitter.push(Buffer.from(`${line}\n`));
    expect(pieces.map((piece) => [piece.bytes.length, piece.partial])).toEqual([
      [1024, true],
      [1024, true],
      [1024, true],
      [1024, true],
      [1024, true],
      [880, false],
    ]);
    expect(pieces.map((piece) => piece.bytes.toString()).join('')).toBe(line);
  });

  it('marks no piece partial for a line exactly at the limit', () => {
    const splitter = new LineSplitter(8);
    expect(text(splitter.push(Buffer.from('12345678\n')))).toEqual([['12345678', false]]);
  });
});

describe('utf8Boundary', () => {
  it('steps back to the start of a character the limit falls inside', () => {
    const bytes = Buffer.from('ab😀cd'); // the emoji is bytes 2..5
    expect(utf8Boundary(bytes, 2)).toBe(2);
    expect(utf8Boundary(bytes, 3)).toBe(2);
    expect(utf8Boundary(bytes, 5)).toBe(2);
    expect(utf8Boundary(bytes, 6)).toBe(6);
    expect(utf8Boundary(bytes, 100)).toBe(bytes.length);
  });

  it('steps back no more than a character is long when the bytes are not UTF-8', () => {
    const bytes = Buffer.alloc(16, 0x80);
    expect(utf8Boundary(bytes, 10)).toBe(7);
  });

  it('never cuts nothing: with no character start before the limit it cuts at the limit', () => {
    const bytes = Buffer.alloc(16, 0x80);
    expect(utf8Boundary(bytes, 2)).toBe(2);
    const splitter = new LineSplitter(2);
    const pieces = splitter.push(Buffer.concat([bytes, Buffer.from('\n')]));
    expect(pieces.every((piece) => piece.bytes.length > 0)).toBe(true);
    expect(Buffer.concat(pieces.map((piece) => piece.bytes)).equals(bytes)).toBe(true);
  });
});

describe('decodeLine', () => {
  it('reads valid UTF-8 as text', () => {
    expect(decodeLine(Buffer.from('grüße ✓'))).toEqual({ text: 'grüße ✓' });
  });

  it('keeps a byte order mark at the start of a line, as the history keeps the line', () => {
    const printed = Buffer.from('\uFEFF{"type":"x"}');
    expect(decodeLine(printed).text).toBe('\uFEFF{"type":"x"}');
    expect(Buffer.from(decodeLine(printed).text).equals(printed)).toBe(true);
  });

  it('hands bytes that are not UTF-8 over as base64, losing nothing', () => {
    const bytes = Buffer.from([0x66, 0xff, 0xfe, 0x00, 0xc3]);
    const decoded = decodeLine(bytes);
    expect(decoded.encoding).toBe('base64');
    expect(Buffer.from(decoded.text, 'base64').equals(bytes)).toBe(true);
  });
});
