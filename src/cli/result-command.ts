import { ClaudeboxError } from '../client/index.js';
import { connect } from './connect.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { parseWaitSeconds } from './options.js';

export interface ResultOptions {
  readonly wait?: string;
}

/**
 * `claudebox result <jobId>`: the job's ExecuteResult as pretty JSON; exit 0 when it succeeded,
 * 1 when it failed, 3 when there is no such job or it has not finished (within --wait).
 */
export async function runResultCommand(
  jobId: string,
  options: ResultOptions,
  io: CliIo,
): Promise<number> {
  const waitSeconds = options.wait === undefined ? 0 : parseWaitSeconds('--wait', options.wait);
  const connection = await connect(io);
  try {
    const result = await connection.client.result(jobId, { timeoutMs: waitSeconds * 1000 });
    io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    return result.success ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (!(error instanceof ClaudeboxError)) throw error;
    if (error.code === 'result-timeout') {
      throw new CliError(
        EXIT.notFound,
        waitSeconds === 0
          ? `job ${jobId} has not finished yet (--wait <seconds> waits for it)`
          : `job ${jobId} did not finish within ${waitSeconds}s`,
      );
    }
    throw new CliError(EXIT.notFound, error.message);
  } finally {
    await connection.close();
  }
}
