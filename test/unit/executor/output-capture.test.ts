import { describe, expect, it } from 'vitest';
import { headAndTail, OutputCapture } from '../../../src/executor/output-capture.js';

describe('OutputCapture', () => {
  it('keeps output within the budget whole', () => {
    const capture = new OutputCapture(1024);
    capture.add(Buffer.from('hello '));
    capture.add(Buffer.from('world'));
    expect(capture.text()).toBe('hello world');
    expect(capture.bytes).toBe(11);
    expect(capture.truncated).toBe(false);
  });

  it('keeps output of exactly the budget whole', () => {
    const capture = new OutputCapture(10);
    capture.add(Buffer.from('0123456789'));
    expect(capture.text()).toBe('0123456789');
    expect(capture.truncated).toBe(false);
  });

  it('keeps the head and the tail of a larger output around a marker naming what was cut', () => {
    const capture = new OutputCapture(10);
    capture.add(Buffer.from('abcdefghijklmnopqrstuvwxyz'));
    expect(capture.text()).toBe('abcde\n[... 16 bytes of output truncated ...]\nvwxyz');
    expect(capture.bytes).toBe(26);
    expect(capture.truncated).toBe(true);
  });

  it('keeps exactly the last bytes of a stream that came in many small chunks', () => {
    const capture = new OutputCapture(100);
    const all = Array.from({ length: 5000 }, (_, i) => `${i}\n`).join('');
    for (let at = 0; at < all.length; at += 7) capture.add(Buffer.from(all.slice(at, at + 7)));
    const kept = capture.text().split('\n[... ');
    expect(kept[0]).toBe(all.slice(0, 50));
    expect(capture.text().endsWith(`bytes of output truncated ...]\n${all.slice(-50)}`)).toBe(true);
    expect(capture.text()).toContain(`[... ${all.length - 100} bytes of output truncated ...]`);
    expect(capture.bytes).toBe(all.length);
  });

  it('does not keep a reference to a chunk that may be reused after add()', () => {
    const capture = new OutputCapture(8);
    const chunk = Buffer.from('abcdefghij');
    capture.add(chunk);
    chunk.fill(0x7a);
    expect(capture.text()).toBe('abcd\n[... 2 bytes of output truncated ...]\nghij');
  });

  it('holds memory to the budget however much goes through it', () => {
    const capture = new OutputCapture(1024);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    for (let i = 0; i < 200; i++) capture.add(chunk);
    expect(capture.bytes).toBe(200 * 64 * 1024);
    // 1 KiB kept, plus the marker.
    expect(capture.text().length).toBeLessThan(1024 + 100);
  });
});

describe('OutputCapture of text in characters of several bytes', () => {
  it('cuts between characters, naming the bytes cut', () => {
    const text = '日本語'.repeat(10_000);
    const capture = new OutputCapture(1001);
    // As a pipe hands it over: chunks that end inside a character.
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length; at += 4096) capture.add(bytes.subarray(at, at + 4096));

    const kept = capture.text();
    expect(kept).not.toContain('\uFFFD');
    const [head = '', tail = ''] = kept.split(
      /\n\[\.\.\. \d+ bytes of output truncated \.\.\.\]\n/,
    );
    expect(text.startsWith(head) && text.endsWith(tail)).toBe(true);
    const cut = Number(/\[\.\.\. (\d+) bytes/.exec(kept)?.[1]);
    expect(Buffer.byteLength(head) + cut + Buffer.byteLength(tail)).toBe(bytes.length);
  });
});

describe('headAndTail', () => {
  it('keeps a text within the budget whole', () => {
    expect(headAndTail('日本語', 9)).toEqual({ text: '日本語', truncated: false });
  });

  it('cuts a longer one between characters, its marker within the budget', () => {
    const text = '日本語'.repeat(30_000);
    const kept = headAndTail(text, 65_536);
    expect(kept.truncated).toBe(true);
    expect(Buffer.byteLength(kept.text)).toBeLessThanOrEqual(65_536);
    expect(kept.text).not.toContain('\uFFFD');
    const [head = '', tail = ''] = kept.text.split(
      /\n\[\.\.\. \d+ bytes of output truncated \.\.\.\]\n/,
    );
    expect(text.startsWith(head) && text.endsWith(tail)).toBe(true);
    const cut = Number(/\[\.\.\. (\d+) bytes/.exec(kept.text)?.[1]);
    expect(Buffer.byteLength(head) + cut + Buffer.byteLength(tail)).toBe(Buffer.byteLength(text));
  });
});
