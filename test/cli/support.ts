import { spawn, type ChildProcess } from 'node:child_process';
import { Readable } from 'node:stream';
import type { CliIo, Terminal } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/program.js';

const root = new URL('../../', import.meta.url).pathname;

export interface CliProcess {
  readonly child: ChildProcess;
  /** Everything printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Waits until stdout matches. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/**
 * `claudebox ...` as its own process, from source, as a user would run it: only the given
 * environment plus PATH and HOME, stdio piped (so no terminal).
 */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
  options: { readonly stdin?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `${root}src/cli/main.ts`, ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.stdin ?? '');
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async waitForStdout(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(out);
        if (match) return match;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`stdout never matched ${pattern}; stdout: ${out}; stderr: ${err}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

/** Keeps track of spawned CLIs so a test can tell that none outlived it. */
export class CliProcesses {
  private readonly all: CliProcess[] = [];

  spawn(...args: Parameters<typeof spawnCli>): CliProcess {
    const cli = spawnCli(...args);
    this.all.push(cli);
    return cli;
  }

  /** Kills what is still running and returns the pids it had to kill (a test expects none). */
  async reap(): Promise<number[]> {
    const leftovers: number[] = [];
    for (const cli of this.all.splice(0)) {
      if (cli.child.exitCode === null && cli.child.signalCode === null) {
        leftovers.push(cli.child.pid ?? 0);
        cli.child.kill('SIGKILL');
      }
      await cli.exited;
    }
    return leftovers;
  }
}

export interface FakeIo extends CliIo {
  readonly out: string[];
  readonly err: string[];
  /** Everything written to stdout, as lines. */
  stdoutLines(): string[];
  stderrText(): string;
  /** As if the user pressed Ctrl-C. */
  interrupt(): void;
  /** How many interrupt handlers are installed now. */
  handlers(): number;
}

/** A CliIo for running commands in-process: no terminal unless one is given. */
export function fakeIo(
  env: Record<string, string | undefined>,
  options: {
    readonly stdin?: string | Buffer;
    readonly terminal?: () => Terminal | null;
    readonly tty?: boolean;
  } = {},
): FakeIo {
  const out: string[] = [];
  const err: string[] = [];
  let handlers: (() => void)[] = [];
  const tty = options.tty ?? false;
  return {
    env,
    cwd: process.cwd(),
    out,
    err,
    stdout: (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
    isTTY: { stdin: tty, stdout: false, stderr: tty },
    platform: 'linux',
    onInterrupt: (handler) => {
      handlers.push(handler);
      return () => {
        handlers = handlers.filter((h) => h !== handler);
      };
    },
    openTerminal: options.terminal ?? (() => null),
    stdoutLines: () => out.join('').split('\n').slice(0, -1),
    stderrText: () => err.join(''),
    interrupt: () => {
      for (const handler of [...handlers]) handler();
    },
    handlers: () => handlers.length,
  };
}

/** Runs `claudebox <args>` in-process. */
export function cli(args: readonly string[], io: CliIo): Promise<number> {
  return runCli(args, io);
}
