import type { ExecuteResult } from '../../contract/index.js';

/**
 * At most this many lines per attempt go to the job's log: the start, the tool calls (the
 * first ones, then a line counting the rest), and the terminal line.
 */
export const JOB_LOG_LINES_PER_ATTEMPT = 50;

/** How long the end of an attempt waits for its log lines to be written. */
const FLUSH_MS = 2000;

interface Loggable {
  log(row: string): Promise<unknown>;
}

/**
 * A short summary of an attempt in the job's own log (`job.log`), which queue dashboards such
 * as Bull Board show: the run itself stays in the events. Writing it never holds up or fails
 * the attempt: lines go out one after another in the background, and a failure is reported
 * once, then the log is given up.
 */
export class JobLog {
  private written = 0;
  private skippedToolCalls = 0;
  private chain: Promise<void> = Promise.resolve();
  private failed = false;

  constructor(
    private readonly job: Loggable,
    private readonly attempt: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  started(pid: number, sessionId: string | null, resumed: boolean): void {
    const session = sessionId === null ? 'no session' : `session ${sessionId}`;
    this.add(
      `attempt ${this.attempt} started: pid ${pid}, ${session}${resumed ? ' (resumed)' : ''}`,
    );
  }

  /** A whole stdout line of the CLI: each tool call the model makes in it is logged by name. */
  output(line: string): void {
    // Most lines are not tool calls; a line can be megabytes, so parse only the candidates.
    if (!line.includes('"tool_use"')) return;
    for (const name of toolCallNames(line)) {
      // Room is kept for the count of the rest and for the terminal line.
      if (this.written >= JOB_LOG_LINES_PER_ATTEMPT - 2) this.skippedToolCalls++;
      else this.add(`tool call: ${name}`);
    }
  }

  /** The attempt's terminal line; waits (a little) for every line to be written. */
  async ended(result: ExecuteResult): Promise<void> {
    if (this.skippedToolCalls > 0) {
      this.add(`... and ${this.skippedToolCalls} more tool calls (see the job's events)`);
    }
    this.add(terminalLine(result));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.chain,
      new Promise((resolve) => (timer = setTimeout(resolve, FLUSH_MS))),
    ]);
    clearTimeout(timer);
  }

  private add(row: string): void {
    if (this.failed) return;
    this.written++;
    this.chain = this.chain.then(async () => {
      if (this.failed) return;
      try {
        await this.job.log(row);
      } catch (error) {
        this.failed = true;
        this.onError(error);
      }
    });
  }
}

function toolCallNames(line: string): string[] {
  try {
    const parsed = JSON.parse(line) as { type?: unknown; message?: { content?: unknown } };
    const content = parsed.type === 'assistant' ? parsed.message?.content : undefined;
    if (!Array.isArray(content)) return [];
    return content.flatMap((block: { type?: unknown; name?: unknown }) =>
      block.type === 'tool_use' && typeof block.name === 'string' ? [block.name] : [],
    );
  } catch {
    return [];
  }
}

function terminalLine(result: ExecuteResult): string {
  const seconds = `${(result.durationMs / 1000).toFixed(1)} s`;
  const retry = result.retrying ? '; retrying' : '';
  if (result.success) {
    const turns = result.numTurns === null ? '' : `, ${result.numTurns} turns`;
    const cost = result.costUsd === null ? '' : `, $${result.costUsd.toFixed(4)}`;
    return `attempt ${result.attempt} completed in ${seconds}${turns}${cost}`;
  }
  return `attempt ${result.attempt} failed (${result.failure ?? 'failed'}) after ${seconds}: ${result.error ?? 'no reason given'}${retry}`;
}
