import { closeSync, openSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { isatty, ReadStream, WriteStream } from 'node:tty';
import type { CliIo, Terminal } from './io.js';

/** The real process behind a CliIo. */
export function processIo(): CliIo {
  // A reader that went away (`| head`) ends the output, not the command: the exit code still
  // follows the run.
  let stdoutGone = false;
  process.stdout.on('error', () => (stdoutGone = true));
  // So too for stderr (`2>&1 | head`): a write to it that fails must not end the command.
  let stderrGone = false;
  process.stderr.on('error', () => (stderrGone = true));
  return {
    env: process.env,
    cwd: process.cwd(),
    stdout: (text) => {
      if (!stdoutGone) process.stdout.write(text);
    },
    stdoutBytes: (bytes) => {
      if (!stdoutGone) process.stdout.write(bytes);
    },
    stderr: (text) => {
      if (!stderrGone) process.stderr.write(text);
    },
    // Touched only when read: an unused stdin pipe must not keep the process alive.
    stdin: { [Symbol.asyncIterator]: () => process.stdin[Symbol.asyncIterator]() },
    isTTY: { stdin: isatty(0), stdout: isatty(1), stderr: isatty(2) },
    platform: process.platform,
    onInterrupt: (handler) => {
      process.on('SIGINT', handler);
      return () => void process.off('SIGINT', handler);
    },
    openTerminal,
  };
}

/**
 * The controlling terminal (/dev/tty), so the question reaches the user even when stdin is
 * a pipe (`... | claudebox run - --follow`) or stdout goes to a file; else stdin when it is a
 * terminal; else none.
 */
function openTerminal(): Terminal | null {
  let input: NodeJS.ReadableStream;
  let output: NodeJS.WritableStream;
  let release: () => void;
  try {
    const inFd = openSync('/dev/tty', 'r');
    let outFd: number;
    try {
      outFd = openSync('/dev/tty', 'w');
    } catch (error) {
      closeSync(inFd);
      throw error;
    }
    const ttyIn = new ReadStream(inFd);
    const ttyOut = new WriteStream(outFd);
    input = ttyIn;
    output = ttyOut;
    release = () => {
      ttyIn.destroy();
      ttyOut.destroy();
    };
  } catch {
    if (!isatty(0)) return null;
    input = process.stdin;
    output = process.stderr;
    release = () => void process.stdin.pause();
  }
  const readline = createInterface({ input, output, terminal: true });
  return {
    ask: (question) =>
      new Promise((resolve) => {
        const finish = (answer: string | null): void => {
          readline.off('SIGINT', onCtrlC);
          readline.off('close', onClose);
          resolve(answer);
        };
        // The terminal is in raw mode during the question: Ctrl-C arrives here, not as a signal.
        const onCtrlC = (): void => {
          output.write('^C\n');
          finish(null);
        };
        // Ctrl-D: no answer, so the default one.
        const onClose = (): void => finish('');
        readline.on('SIGINT', onCtrlC);
        readline.on('close', onClose);
        readline.question(question, finish);
      }),
    close: () => {
      readline.close();
      release();
    },
  };
}
