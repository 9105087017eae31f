/**
 * Everything a command touches outside itself, handed in so tests can run commands in-process
 * with fakes: no command reads `process` directly.
 */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly platform: NodeJS.Platform;
  /** Raw text: callers add the newlines. */
  readonly stdout: (text: string) => void;
  /** Raw bytes (a patch, which need not be UTF-8); absent: written as UTF-8 text by `stdout`. */
  readonly stdoutBytes?: (bytes: Uint8Array) => void;
  readonly stderr: (text: string) => void;
  /** Read only by `run -`, for the prompt. */
  readonly stdin: AsyncIterable<Buffer | string>;
  readonly isTTY: { readonly stdin: boolean; readonly stdout: boolean; readonly stderr: boolean };
  /**
   * Calls `handler` on each Ctrl-C (SIGINT) until the returned function is called. While a
   * handler is installed, Ctrl-C does not end the process.
   */
  readonly onInterrupt: (handler: () => void) => () => void;
  /** The user's terminal to ask a question on, or null when there is none. */
  readonly openTerminal: () => Terminal | null;
}

export interface Terminal {
  /**
   * Shows `question` and resolves with the line typed, or with null when the user pressed
   * Ctrl-C at the question (the terminal is in raw mode then: no SIGINT is sent).
   */
  ask(question: string): Promise<string | null>;
  /** Gives the terminal back; the process can exit afterwards. */
  close(): void;
}

export function writeLines(write: (text: string) => void, lines: readonly string[]): void {
  if (lines.length > 0) write(`${lines.join('\n')}\n`);
}

/** Whether a person is likely watching: any of the standard streams is a terminal. */
export function isInteractive(io: CliIo): boolean {
  return io.isTTY.stdin || io.isTTY.stdout || io.isTTY.stderr;
}

/** Colors only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(io: CliIo): boolean {
  return io.isTTY.stdout && (io.env.NO_COLOR ?? '') === '';
}
