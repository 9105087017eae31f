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
    let head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    if (tail.length > this.tailLimit) tail = tail.subarray(tail.length - this.tailLimit);
    if (this.total <= head.length + tail.length) {
      return Buffer.concat([head, tail]).toString('utf8');
    }
    // The cuts fall between characters: a character cut in two would read as U+FFFD.
    head = head.subarray(0, wholeCharactersEnd(head));
    tail = tail.subarray(wholeCharactersStart(tail));
    const marker = truncated(this.total - head.length - tail.length);
    return head.toString('utf8') + marker + tail.toString('utf8');
  }
}

/** What stands in a kept text for the `cut` bytes between its head and its tail. */
const truncated = (cut: number): string => `\n[... ${cut} bytes of output truncated ...]\n`;

const isContinuation = (byte: number | undefined): boolean =>
  byte !== undefined && (byte & 0xc0) === 0x80;

/** Where `bytes` end without the first bytes of a character whose last ones are cut off. */
function wholeCharactersEnd(bytes: Buffer): number {
  let lead = bytes.length - 1;
  while (lead > bytes.length - 4 && lead > 0 && isContinuation(bytes[lead])) lead--;
  const first = bytes[lead] ?? 0;
  const length = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return lead >= 0 && bytes.length - lead < length ? lead : bytes.length;
}

/** Where `bytes` begin after the last bytes of a character whose first ones are cut off. */
function wholeCharactersStart(bytes: Buffer): number {
  let start = 0;
  while (start < 3 && isContinuation(bytes[start])) start++;
  return start;
}

/**
 * `text` within `maxBytes` of UTF-8, head and tail kept around a marker naming what was cut, as
 * OutputCapture keeps a stream's; each cut falls between two characters, never inside one.
 */
export function headAndTail(
  text: string,
  maxBytes: number,
): { readonly text: string; readonly truncated: boolean } {
  const bytes = Buffer.from(text);
  if (bytes.length <= maxBytes) return { text, truncated: false };
  // The marker's room at its longest: the cut is at most every byte.
  const room = Math.max(0, maxBytes - Buffer.byteLength(truncated(bytes.length)));
  const headEnd = wholeCharactersEnd(bytes.subarray(0, Math.floor(room / 2)));
  const tailFrom = bytes.length - (room - Math.floor(room / 2));
  const tailStart = tailFrom + wholeCharactersStart(bytes.subarray(tailFrom));
  const head = bytes.subarray(0, headEnd).toString();
  const tail = bytes.subarray(tailStart).toString();
  return { text: head + truncated(tailStart - headEnd) + tail, truncated: true };
}
