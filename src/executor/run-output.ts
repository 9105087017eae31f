import type { Readable } from 'node:stream';
import { decodeLine, LineSplitter, type RawLine } from './lines.js';
import { OutputCapture } from './output-capture.js';
import { StreamSummary } from './stream-summary.js';

export interface RunLine {
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
  /** The line was not valid UTF-8 and `text` holds its bytes in base64. */
  readonly encoding?: 'base64';
  /** The line went past the line limit and continues in the next RunLine. */
  readonly partial: boolean;
  /** A stdout line that reports a tool's result: the tool is done with its files. */
  readonly toolResult?: true;
  /** The line as printed, where `text` is it decoded (not base64): kept without encoding again. */
  readonly bytes?: Buffer;
}

export interface OutputWatcher {
  readonly activity?: () => void;
  readonly result?: () => void;
  /** The CLI said it waits this long before it retries an API call (an `api_retry` line). */
  readonly retryWait?: (delayMs: number) => void;
}

/**
 * What a run printed: every line handed on in order, stdout kept (up to its cap) and summed up
 * (session, result line), and stderr's last whole line kept for the failure reason.
 */
export class RunOutput {
  readonly summary: StreamSummary;
  private readonly capture: OutputCapture;
  private stderrTail: string | null = null;
  private watcher: OutputWatcher = {};
  private waits = 0;

  constructor(
    private readonly limits: { readonly maxOutputBytes: number; readonly maxLineBytes: number },
    private readonly onLine: (line: RunLine) => void | Promise<void>,
  ) {
    this.capture = new OutputCapture(limits.maxOutputBytes);
    this.summary = new StreamSummary({ answerBytes: limits.maxOutputBytes });
  }

  get lastStderr(): string | null {
    return this.stderrTail;
  }

  get stdout(): { readonly text: string; readonly truncated: boolean; readonly bytes: number } {
    return {
      text: this.capture.text(),
      truncated: this.capture.truncated,
      bytes: this.capture.bytes,
    };
  }

  /** Whether reading waits on `onLine` now (on Redis, say), not on the run's pipes. */
  get waitingOnConsumer(): boolean {
    return this.waits > 0;
  }

  /** Who hears that the run printed something, and that its result line came. */
  watch(watcher: OutputWatcher): void {
    this.watcher = watcher;
  }

  /** Reads one stream to its end; reading pauses while `onLine` is busy. */
  async read(stream: Readable, kind: 'stdout' | 'stderr'): Promise<void> {
    const splitter = new LineSplitter(this.limits.maxLineBytes);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      this.watcher.activity?.();
      if (kind === 'stdout') this.capture.add(chunk);
      for (const line of splitter.push(chunk)) {
        // Awaited only when the consumer asks to wait: a line at a time, a promise each adds up.
        const busy = this.emit(kind, line);
        if (busy) await this.waitOn(busy);
      }
    }
    for (const line of splitter.end()) await this.waitOn(this.emit(kind, line));
  }

  private async waitOn(busy: void | Promise<void>): Promise<void> {
    this.waits++;
    try {
      await busy;
    } finally {
      this.waits--;
    }
  }

  private emit(stream: 'stdout' | 'stderr', raw: RawLine): void | Promise<void> {
    const decoded = decodeLine(raw.bytes);
    let toolResult = false;
    if (stream === 'stdout') {
      const hadResult = this.summary.resultLine !== null;
      const toolResults = this.summary.toolResults;
      const retry = this.summary.lastApiRetry;
      // No piece of a line past MAX_LINE_BYTES is read as a line of its own.
      if (raw.partial || raw.tail) this.summary.observePartial(raw.tail === true);
      else this.summary.observe(decoded.text, decoded.encoding);
      if (!hadResult && this.summary.resultLine !== null) this.watcher.result?.();
      toolResult = this.summary.toolResults > toolResults;
      const newRetry = this.summary.lastApiRetry;
      if (newRetry !== retry && newRetry?.delayMs != null)
        this.watcher.retryWait?.(newRetry.delayMs);
    } else if (!raw.partial && !raw.tail && decoded.encoding === undefined) {
      this.stderrTail = decoded.text;
    }
    return this.onLine({
      stream,
      partial: raw.partial,
      ...decoded,
      ...(toolResult ? { toolResult: true } : {}),
      ...(decoded.encoding === undefined ? { bytes: raw.bytes } : {}),
    });
  }
}
