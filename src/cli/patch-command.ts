import { connect } from './connect.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

/**
 * `claudebox patch <jobId>`: the change the job made in its workspace, raw on stdout, so that
 * `claudebox patch 42 | git apply` applies it. Exit 3 when the job has none; 1, with the summary
 * on stderr and nothing on stdout, when the patch was over the worker's cap and not kept.
 */
export async function runPatchCommand(jobId: string, io: CliIo): Promise<number> {
  const connection = await connect(io);
  try {
    const stored = await connection.client.patch(jobId);
    if (stored === null) {
      throw new CliError(
        EXIT.notFound,
        `job ${jobId} has no workspace change (no such job, no workspace, or it expired)`,
      );
    }
    if (stored.truncated) {
      io.stderr(stored.patch.toString('utf8'));
      throw new CliError(
        EXIT.failed,
        `the change of job ${jobId} (${stored.bytes} bytes) was over the worker's WORKSPACE_PATCH_MAX_BYTES: only its summary (above) is kept`,
      );
    }
    const write =
      io.stdoutBytes ?? ((bytes: Uint8Array) => io.stdout(Buffer.from(bytes).toString('utf8')));
    write(stored.patch);
    return EXIT.ok;
  } finally {
    await connection.close();
  }
}
