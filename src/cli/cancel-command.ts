import { connect } from './connect.js';
import { CliError, EXIT } from './exit-codes.js';
import { describeCancel } from './follow.js';
import type { CliIo } from './io.js';

export interface CancelOptions {
  readonly reason?: string;
}

/** `claudebox cancel <jobId>`: one line saying what happened; exit 0, or 3 for no such job. */
export async function runCancelCommand(
  jobId: string,
  options: CancelOptions,
  io: CliIo,
): Promise<number> {
  const connection = await connect(io);
  try {
    const outcome = await connection.client.cancel(jobId, options.reason);
    if (outcome.outcome === 'not-found') {
      throw new CliError(
        EXIT.notFound,
        `job ${jobId} not found in queue ${connection.address.queueName}`,
      );
    }
    io.stdout(`${describeCancel(outcome)}\n`);
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}
