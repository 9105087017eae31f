import type { CliIo } from '../../src/index.js';
import { startStandIn, type RecordedRequest, type StandIn } from './server.js';
import { errorMessage } from '../../src/common/errors.js';

/**
 * `npm run stand-in -- [--port N] [--host H]`: the stand-in as a process of its own, for a demo
 * or for tests in another language. tools/program.ts parses the options; this serves.
 */

/** Where the stand-in listens, as the options give it (unchecked). */
export interface StandInCommandOptions {
  readonly port?: string;
  readonly host?: string;
}

export const STAND_IN_USAGE = '[--port N] [--host H]';

export const STAND_IN_SUMMARY =
  'Serve a scripted stand-in for the Anthropic API, so the claude CLI runs without a key.';

export const STAND_IN_DESCRIPTION = `Serves a scripted stand-in for the Anthropic Messages API, so the claude CLI runs without an
API key or internet. Write the script in the prompt, one step a line:

  stand-in: say <text>             answer with text ({{result}}: the latest tool result)
  stand-in: bash <command>         call the Bash tool
  stand-in: write <path> <content> call the Write tool (\\n in content: a newline)
  stand-in: read <path>            call the Read tool
  stand-in: edit <path> :: <old> :: <new>   call the Edit tool
  stand-in: http <status> [retry-after=S] [times=N|once]
                                   answer with that HTTP error status (and a retry-after
                                   header); times=N: only the first N calls of a session
  stand-in: malformed              answer with something that is no API reply
  stand-in: structured <json>      call the StructuredOutput tool (with --json-schema)
  stand-in: usage <in> <out>       the next step's reply reports these token counts

Each model call plays the next step; when they run out it answers "Done.". Relative paths
are resolved against the CLI's working directory. Set CLAUDE_CODE_MAX_RETRIES=0 so the CLI
does not retry scripted errors.`;

export const STAND_IN_OPTIONS_HELP = {
  port: 'port to listen on (default 0: any free port)',
  host: 'address to listen on (default 127.0.0.1)',
  help: 'show this help',
} as const;

export const STAND_IN_AFTER_HELP = `
GET /_stand-in/requests lists the requests received; DELETE clears the list.`;

const KEEP_REQUESTS = 500;

/** The address to listen on, or what is wrong with the options (a usage error). */
export function readListenOptions(
  options: StandInCommandOptions,
): { port: number; host: string } | { error: string } {
  const port = options.port ?? '0';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return { error: `--port must be a whole number from 0 to 65535, not ${JSON.stringify(port)}` };
  }
  const host = options.host ?? '127.0.0.1';
  if (host.trim() === '') return { error: '--host must not be empty' };
  return { port: Number(port), host };
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

/**
 * Serves until `untilStopped` resolves; resolves to the exit code (1 when it cannot listen).
 * `untilStopped` is called only once the stand-in listens: a failed start must not leave
 * handlers that swallow the caller's signals.
 */
export async function serveStandIn(
  listen: { readonly port: number; readonly host: string },
  io: CliIo,
  untilStopped: () => Promise<unknown>,
): Promise<number> {
  const say = (line: string): void => io.stdout(`${line}\n`);
  let standIn: StandIn;
  try {
    standIn = await startStandIn({
      port: listen.port,
      host: listen.host,
      // A stand-in left running for days must not grow without bound.
      keepRequests: KEEP_REQUESTS,
      onRequest: (request) => {
        say(describeRequest(request));
      },
    });
  } catch (error) {
    io.stderr(`stand-in: cannot listen on ${listen.host}:${listen.port}: ${errorMessage(error)}\n`);
    return 1;
  }
  const stopped = untilStopped();
  say(
    `Stand-in Messages API listening on ${standIn.url}; run the CLI with ` +
      `ANTHROPIC_BASE_URL=${standIn.url} ANTHROPIC_API_KEY=any`,
  );
  await stopped;
  await standIn.close();
  return 0;
}
