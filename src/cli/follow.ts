import { ClaudeboxError, type CancelOutcome, type ClaudeboxClient } from '../client/index.js';
import { isFinalEvent, type ExecuteEvent, type TerminalEvent } from '../contract/index.js';
import { CliError, EXIT } from './exit-codes.js';
import {
  decideOnInterrupt,
  type InterruptDecision,
  type InterruptPolicy,
  type Interrupts,
} from './interrupt.js';
import { useColor, writeLines, type CliIo } from './io.js';
import { renderEvent } from './render.js';

/** How long a cancelled job gets to say it ended before the command exits anyway. */
const CANCEL_WAIT_MS = 10_000;
export const CANCEL_REASON = 'interrupted from the claudebox command line (Ctrl-C)';

export interface FollowOptions {
  readonly client: ClaudeboxClient;
  readonly jobId: string;
  readonly fromSeq: number;
  readonly json: boolean;
  readonly io: CliIo;
  readonly interrupts: Interrupts;
  readonly policy: InterruptPolicy;
  /** What `ask` means without a terminal. */
  readonly withoutTerminal: InterruptDecision;
}

/** Prints each event as it comes, raw JSON or rendered. */
export function eventPrinter(io: CliIo, json: boolean): (event: ExecuteEvent) => void {
  if (json) return (event) => io.stdout(`${JSON.stringify(event)}\n`);
  const color = useColor(io);
  return (event) => writeLines(io.stdout, renderEvent(event, { color }));
}

/**
 * Prints a job's events until its final one and resolves with the exit code the run calls
 * for; after a Ctrl-C, cancels or detaches (see interrupt.ts) and resolves with 130.
 */
export async function followJob(options: FollowOptions): Promise<number> {
  const { client, jobId, interrupts } = options;
  const events = printedEvents(options);
  const final = await followUntilInterrupted(events, interrupts.signal);
  if (final !== null) return exitCodeOf(final);
  if (!interrupts.signal.aborted) return exitCodeFromResult(client, jobId);
  await afterInterrupt(options, events);
  return EXIT.interrupted;
}

/** A job's events, printed; each stream carries on where the one before stopped. */
interface PrintedEvents {
  /** The first seq not printed yet. */
  next(): number;
  /**
   * Prints events until the stream ends, after the job's final one, and resolves with that;
   * null if the stream stops first. A job retried by hand after an end that was final then goes
   * on: the stream ends after the last final event.
   */
  stream(signal: AbortSignal): Promise<TerminalEvent | null>;
}

function printedEvents({ client, jobId, io, json, fromSeq }: FollowOptions): PrintedEvents {
  const print = eventPrinter(io, json);
  let next = fromSeq;
  return {
    next: () => next,
    async stream(signal) {
      let final: TerminalEvent | null = null;
      for await (const event of client.events(jobId, { fromSeq: next, signal })) {
        // Events already on their way after a Ctrl-C wait for whoever follows from `next`.
        if (signal.aborted) return null;
        print(event);
        next = event.seq + 1;
        final = isFinalEvent(event) ? event : null;
      }
      return signal.aborted ? null : final;
    },
  };
}

/** The final event, or null when the stream ended without one or the signal came first. */
async function followUntilInterrupted(
  events: PrintedEvents,
  signal: AbortSignal,
): Promise<TerminalEvent | null> {
  try {
    // Not waiting for the stream to wind down after a Ctrl-C: during a Redis outage it would
    // hang, and the user's answer must not.
    return await Promise.race([events.stream(signal), whenAborted(signal)]);
  } catch (error) {
    if (error instanceof ClaudeboxError && error.code === 'job-not-found') {
      throw new CliError(EXIT.notFound, error.message);
    }
    throw error;
  }
}

/** Leaves the job running or cancels it, as the policy or the user's answer says. */
async function afterInterrupt(options: FollowOptions, events: PrintedEvents): Promise<void> {
  const { jobId, io, interrupts } = options;
  const decision = await decideOnInterrupt({
    jobId,
    policy: options.policy,
    withoutTerminal: options.withoutTerminal,
    openTerminal: io.openTerminal,
    nextInterrupt: () => interrupts.next(),
  });
  if (decision === 'detach') {
    io.stderr(
      `claudebox: detached; job ${jobId} keeps running. Follow it again with: ` +
        `claudebox events ${jobId} --from ${events.next()}\n`,
    );
    return;
  }
  await cancelInterrupted(options, events);
}

/** Cancels the job and says what that did. */
async function cancelInterrupted(
  { client, jobId, io, interrupts }: FollowOptions,
  events: PrintedEvents,
): Promise<void> {
  // From here on a further Ctrl-C means: stop waiting, exit now.
  const giveUp = new AbortController();
  void interrupts.next().then(() => giveUp.abort());
  const outcome = await Promise.race([
    client.cancel(jobId, CANCEL_REASON),
    whenAborted(giveUp.signal),
  ]);
  if (outcome === null) {
    io.stderr(
      `claudebox: gave up waiting for Redis; job ${jobId} may still be running ` +
        `(see \`claudebox cancel ${jobId}\`)\n`,
    );
    return;
  }
  io.stderr(`claudebox: ${describeCancel(outcome)}\n`);
  if (outcome.outcome === 'stopping' || outcome.outcome === 'already-finished') {
    await showEnding(events, giveUp.signal, io, jobId);
  }
}

/** Prints how the cancelled run ended, for a while. */
async function showEnding(
  events: PrintedEvents,
  giveUp: AbortSignal,
  io: CliIo,
  jobId: string,
): Promise<void> {
  const signal = AbortSignal.any([giveUp, AbortSignal.timeout(CANCEL_WAIT_MS)]);
  const ended = await Promise.race([events.stream(signal), whenAborted(signal)]).catch(() => null);
  if (ended === null) {
    io.stderr(
      `claudebox: job ${jobId} has not ended yet; see \`claudebox result ${jobId} --wait 60\`\n`,
    );
  }
}

/** Resolves with null once the signal is aborted. */
function whenAborted(signal: AbortSignal): Promise<null> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(null);
    else signal.addEventListener('abort', () => resolve(null), { once: true });
  });
}

export function exitCodeOf(final: TerminalEvent): number {
  return final.type === 'completed' ? EXIT.ok : EXIT.failed;
}

/** For a job that ended without a final event anybody could see (it stalled out, say). */
async function exitCodeFromResult(client: ClaudeboxClient, jobId: string): Promise<number> {
  try {
    const result = await client.result(jobId, { timeoutMs: 0 });
    return result.success ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof ClaudeboxError) throw new CliError(EXIT.notFound, error.message);
    throw error;
  }
}

/** One line saying what a cancellation did. */
export function describeCancel(outcome: CancelOutcome): string {
  switch (outcome.outcome) {
    case 'stopping':
      return `job ${outcome.jobId} is running: its worker is stopping it`;
    case 'cancelled':
      return `job ${outcome.jobId} cancelled before it started (it was ${outcome.state})`;
    case 'already-finished':
      return `job ${outcome.jobId} had already finished (${outcome.state})`;
    case 'not-found':
      return `job ${outcome.jobId} not found`;
  }
}
