import { ClaudeboxError } from '../client/index.js';
import { connect } from './connect.js';
import { CliError, EXIT } from './exit-codes.js';
import { eventPrinter, followJob } from './follow.js';
import { choosePolicy, Interrupts, type InterruptPolicy } from './interrupt.js';
import { isInteractive, type CliIo } from './io.js';
import { parseCount } from './options.js';

export interface EventsOptions {
  readonly from?: string;
  readonly json?: boolean;
  /** false with --no-follow. */
  readonly follow?: boolean;
  readonly onInterrupt?: InterruptPolicy;
}

/**
 * `claudebox events <jobId>`: a job's events from a seq on, following the run until its end
 * (exit code as the run's) or, with --no-follow, only what the history holds now (exit 0).
 */
export async function runEventsCommand(
  jobId: string,
  options: EventsOptions,
  io: CliIo,
): Promise<number> {
  const fromSeq = options.from === undefined ? 1 : parseCount('--from', options.from, 1);
  const json = options.json === true;
  const connection = await connect(io);
  try {
    if (options.follow === false) {
      const print = eventPrinter(io, json);
      try {
        for await (const event of connection.client.events(jobId, { fromSeq, follow: false })) {
          print(event);
        }
      } catch (error) {
        if (error instanceof ClaudeboxError && error.code === 'job-not-found') {
          throw new CliError(EXIT.notFound, error.message);
        }
        throw error;
      }
      return EXIT.ok;
    }
    const interrupts = new Interrupts(io);
    try {
      return await followJob({
        client: connection.client,
        jobId,
        fromSeq,
        json,
        io,
        interrupts,
        // It did not start the run, so on its own it never stops it.
        policy: choosePolicy(options.onInterrupt, isInteractive(io), 'detach'),
        withoutTerminal: 'detach',
      });
    } finally {
      interrupts.dispose();
    }
  } finally {
    await connection.close();
  }
}
