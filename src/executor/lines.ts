const NEWLINE = 0x0a;

export interface RawLine {
  readonly bytes: Buffer;
  /** The line goes on in the next RawLine: it was longer than the line limit. */
  readonly partial: boolean;
  /** The last piece of a line that came in pieces (partial ones before it). */
  readonly tail?: true;
}

/**
 * Splits a byte stream into lines with no cap on what a line may hold in total: a line longer
 * than `maxLineBytes` comes out in pieces (all but the last marked partial), so memory stays
 * bounded and the reader never stops, whatever the CLI prints.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Whether the line under way already came out in part. */
  private split = false;

  constructor(private readonly maxLineBytes: number) {}

  push(chunk: Buffer): RawLine[] {
    const lines: RawLine[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      this.append(chunk.subarray(start, end), lines);
      lines.push(this.lineEnd());
      start = end + 1;
    }
    if (start < chunk.length) this.append(chunk.subarray(start), lines);
    return lines;
  }

  /** What is left once the stream ended: a last line without a newline. */
  end(): RawLine[] {
    return this.pendingBytes > 0 ? [this.lineEnd()] : [];
  }

  private lineEnd(): RawLine {
    const split = this.split;
    this.split = false;
    return split
      ? { bytes: this.take(), partial: false, tail: true }
      : { bytes: this.take(), partial: false };
  }

  private append(piece: Buffer, lines: RawLine[]): void {
    if (piece.length === 0) return;
    this.pending.push(piece);
    this.pendingBytes += piece.length;
    while (this.pendingBytes > this.maxLineBytes) {
      const all = this.take();
      const cut = utf8Boundary(all, this.maxLineBytes);
      lines.push({ bytes: all.subarray(0, cut), partial: true });
      this.split = true;
      this.pending = [all.subarray(cut)];
      this.pendingBytes = all.length - cut;
    }
  }

  private take(): Buffer {
    const bytes =
      this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return bytes;
  }
}

/** The largest cut at or below `limit` that does not split a UTF-8 character. */
export function utf8Boundary(bytes: Buffer, limit: number): number {
  let cut = Math.min(limit, bytes.length);
  // Step back over continuation bytes (10xxxxxx), at most three, to a character's first byte.
  for (let back = 0; back < 3 && cut > 0 && cut < bytes.length; back++) {
    if (((bytes[cut] as number) & 0xc0) !== 0x80) break;
    cut--;
  }
  return cut > 0 ? cut : Math.min(limit, bytes.length);
}

// ignoreBOM: a line's leading U+FEFF is text the run printed, kept whole as the history keeps it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface DecodedLine {
  readonly text: string;
  /** Set when the bytes were not valid UTF-8: `text` is then their base64. */
  readonly encoding?: 'base64';
}

export function decodeLine(bytes: Buffer): DecodedLine {
  try {
    return { text: strictUtf8.decode(bytes) };
  } catch {
    return { text: bytes.toString('base64'), encoding: 'base64' };
  }
}
