import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startStandIn, type RecordedRequest, type StandIn } from './server.js';

/**
 * `node dist/stand-in/main.js [--port N] [--host H]`: the stand-in as a process of its own, for
 * a demo or for tests in another language. Another command line (claudebox's own) can offer
 * the same command by calling runStandInCommand.
 */

export interface CommandIo {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  /** Stops the stand-in; by default SIGINT and SIGTERM do. */
  readonly stopped?: Promise<unknown>;
}

const USAGE = `Usage: stand-in [--port N] [--host H]

Serves a scripted stand-in for the Anthropic Messages API, so the claude CLI runs without an
API key or internet. Write the script in the prompt, one step a line:

  stand-in: say <text>             answer with text ({{result}}: the latest tool result)
  stand-in: bash <command>         call the Bash tool
  stand-in: write <path> <content> call the Write tool (\\n in content: a newline)
  stand-in: read <path>            call the Read tool
  stand-in: edit <path> :: <old> :: <new>   call the Edit tool
  stand-in: http <status>          answer with that HTTP error status
  stand-in: malformed              answer with something that is no API reply

Each model call plays the next step; when they run out it answers "Done.". Relative paths
are resolved against the CLI's working directory. Set CLAUDE_CODE_MAX_RETRIES=0 so the CLI
does not retry scripted errors.

Options:
  --port N   port to listen on (default 0: any free port)
  --host H   address to listen on (default 127.0.0.1)
  -h, --help show this help

GET /_stand-in/requests lists the requests received; DELETE clears the list.`;

const KEEP_REQUESTS = 500;

const defaultIo: CommandIo = {
  stdout: (line) => void process.stdout.write(`${line}\n`),
  stderr: (line) => void process.stderr.write(`${line}\n`),
};

type Parsed = { help: true } | { help: false; port: number; host: string } | { error: string };

function parse(argv: readonly string[]): Parsed {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
  if (values.help === true) return { help: true };
  const port = values.port ?? '0';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return { error: `--port must be a whole number from 0 to 65535, not ${JSON.stringify(port)}` };
  }
  const host = values.host ?? '127.0.0.1';
  if (host.trim() === '') return { error: '--host must not be empty' };
  return { help: false, port: Number(port), host };
}

/** One log line per request: what came in and what the script made of it. */
export function describeRequest(request: RecordedRequest): string {
  const { played } = request;
  const what =
    played.step !== undefined && played.steps !== undefined
      ? `step ${played.step + 1}/${played.steps} (${played.stepKind ?? '?'})`
      : played.scenario;
  const reply = played.reply !== undefined ? ` -> ${played.reply}` : '';
  return `${request.at} ${request.method} ${request.path} ${played.status} ${what}${reply}`;
}

function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs the command until stopped; resolves to the exit code (2 for a bad argument). */
export async function runStandInCommand(
  argv: readonly string[],
  io: CommandIo = defaultIo,
): Promise<number> {
  const parsed = parse(argv);
  if ('error' in parsed) {
    io.stderr(`stand-in: ${parsed.error}`);
    io.stderr('Run with --help for the usage.');
    return 2;
  }
  if (parsed.help) {
    io.stdout(USAGE);
    return 0;
  }
  let standIn: StandIn;
  try {
    standIn = await startStandIn({
      port: parsed.port,
      host: parsed.host,
      // A stand-in left running for days must not grow without bound.
      keepRequests: KEEP_REQUESTS,
      onRequest: (request) => {
        io.stdout(describeRequest(request));
      },
    });
  } catch (error) {
    io.stderr(
      `stand-in: cannot listen on ${parsed.host}:${parsed.port}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
  // Only now: a failed start must not leave handlers that swallow the caller's signals.
  const stopped = io.stopped ?? stopSignal();
  io.stdout(
    `Stand-in Messages API listening on ${standIn.url}; run the CLI with ` +
      `ANTHROPIC_BASE_URL=${standIn.url} ANTHROPIC_API_KEY=any`,
  );
  await stopped;
  await standIn.close();
  return 0;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await runStandInCommand(process.argv.slice(2));
}
