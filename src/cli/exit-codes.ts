/** The exit codes of every `claudebox` command, so scripts can tell the cases apart. */
export const EXIT = {
  ok: 0,
  /** The run failed, or claudebox could not work at all (bad configuration, Redis unreachable). */
  failed: 1,
  /** Bad usage: an unknown option, a bad option value, a request the contract rejects. */
  usage: 2,
  /** No such job, or it did not finish within the wait. */
  notFound: 3,
  /** Ctrl-C (SIGINT) while following a job: 128 + SIGINT, as shells report it. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The table shown at the end of every `--help`. */
export const EXIT_CODES_HELP = `
Exit codes:
  0    success: the run completed (following it), the job was queued, found or cancelled
  1    the run failed (following it, or its result); bad configuration; Redis unreachable
  2    usage error: a bad option value, or a request the job contract rejects
  3    no such job, or it did not finish within the wait
  130  interrupted: Ctrl-C while following a job`;

/**
 * A command ending early: the message goes to stderr as one `claudebox: ...` line and the
 * process exits with `code`.
 */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
  }
}
