/**
 * Keeps the head and the tail of a stream within a byte budget, so a run that prints gigabytes
 * still yields a bounded `output` that shows how it began and how it ended.
 */
export class OutputCapture {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private total = 0;
  private readonly headLimit: number;
  private readonly tailLimit: number;

  constructor(maxBytes: number) {
    this.headLimit = Math.floor(maxBytes / 2);
    this.tailLimit = maxBytes - this.headLimit;
  }

  add(chunk: Buffer): void {
    this.total += chunk.length;
    const forHead = Math.min(chunk.length, this.headLimit - this.headBytes);
    if (forHead > 0) {
      this.head.push(Buffer.from(chunk.subarray(0, forHead)));
      this.headBytes += forHead;
    }
    const rest = chunk.subarray(forHead);
    if (rest.length === 0) return;
    // Copy: the tail may outlive the chunk's pooled buffer.
    this.tail.push(Buffer.from(rest.subarray(Math.max(0, rest.length - this.tailLimit))));
    this.tailBytes += Math.min(rest.length, this.tailLimit);
    while (
      this.tail.length > 1 &&
      this.tailBytes - (this.tail[0] as Buffer).length >= this.tailLimit
    ) {
      this.tailBytes -= (this.tail.shift() as Buffer).length;
    }
  }

  get bytes(): number {
    return this.total;
  }

  get truncated(): boolean {
    return this.total > this.headBytes + this.tailBytes || this.tailBytes > this.tailLimit;
  }

  text(): string {
    const head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.tailLimit) tail = tail.subarray(tail.length - this.tailLimit);
    const kept = head.length + tail.length;
    if (this.total <= kept) return Buffer.concat([head, tail]).toString('utf8');
    const marker = `\n[... ${this.total - kept} bytes of output truncated ...]\n`;
    return head.toString('utf8') + marker + tail.toString('utf8');
  }
}

/** `text` within `maxBytes` of UTF-8, head and tail kept around a marker as OutputCapture does. */
export function headAndTail(
  text: string,
  maxBytes: number,
): { readonly text: string; readonly truncated: boolean } {
  if (Buffer.byteLength(text) <= maxBytes) return { text, truncated: false };
  const capture = new OutputCapture(maxBytes);
  capture.add(Buffer.from(text));
  return { text: capture.text(), truncated: true };
}
