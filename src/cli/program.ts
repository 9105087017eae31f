import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { EFFORT_LEVELS, PERMISSION_MODES } from '../contract/index.js';
import { runCancelCommand, type CancelOptions } from './cancel-command.js';
import { runEventsCommand, type EventsOptions } from './events-command.js';
import { CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { holdSignals } from './held-signals.js';
import { INTERRUPT_POLICIES } from './interrupt.js';
import type { CliIo } from './io.js';
import { runPatchCommand } from './patch-command.js';
import { runResultCommand, type ResultOptions } from './result-command.js';
import { runRunCommand, type RunOptions } from './run-command.js';
import type { ServeOptions } from './serve-command.js';
import { errorMessage } from '../common/errors.js';

const ENVIRONMENT_HELP = `
Environment (the same variables as the worker's):
  REDIS_URL      Redis to use (default redis://127.0.0.1:6379)
  QUEUE_NAME     the queue (default claudebox)
  QUEUE_PREFIX   BullMQ's key prefix (default bull)
  EVENTS_PUBSUB  how live events are published: plain or sharded (default plain)`;

/** The Ctrl-C part of `--help` for a command that follows a job. */
function interruptHelp(withoutTerminal: 'cancel' | 'detach'): string {
  const note = (policy: string): string =>
    policy === withoutTerminal ? '\n          (the default without a terminal)' : '';
  return `
Ctrl-C while following stops the following; --on-interrupt says what becomes of the job:
  ask     ask "Cancel job <id> too? [y/N]" on the terminal (a second Ctrl-C means yes);
          the default at a terminal
  cancel  cancel the job and wait up to 10 s for it to end${note('cancel')}
  detach  leave the job running and print how to follow it again${note('detach')}
The exit code is then 130.`;
}

/**
 * `claudebox <command> ...`: parses `args` (without the node and script paths) and resolves
 * with the exit code. Nothing here touches the process: `io` is everything it uses.
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (error) {
    // Commander's own ends: help and --version (0), usage mistakes (2).
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw error;
  }
  return exitCode;
}

/** Wraps a command so that its exit code, or its error as one line and an exit code, is kept. */
type Act = <A extends unknown[]>(
  command: (...args: A) => Promise<number>,
) => (...args: A) => Promise<void>;

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const act = actFor(io, setExitCode);
  const program = rootCommand(io);
  addWorkerCommand(program, io, act);
  addRunCommand(program, io, act);
  addEventsCommand(program, io, act);
  addResultCommand(program, io, act);
  addPatchCommand(program, io, act);
  addCancelCommand(program, io, act);
  addServeCommand(program, io, act);
  return program;
}

function actFor(io: CliIo, setExitCode: (code: number) => void): Act {
  return (command) =>
    async (...args) => {
      try {
        setExitCode(await command(...args));
      } catch (error) {
        if (error instanceof CliError) {
          io.stderr(`claudebox: ${error.message}\n`);
          setExitCode(error.code);
          return;
        }
        io.stderr(`claudebox: ${errorMessage(error)}\n`);
        setExitCode(EXIT.failed);
      }
    };
}

function rootCommand(io: CliIo): Command {
  // Settings made before .command() are inherited by every subcommand.
  return new Command()
    .name('claudebox')
    .description('Runs Claude Code as background jobs on a BullMQ queue.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`);
}

function addWorkerCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('worker')
    .description('Start a worker (configured by environment variables; see the README).')
    .action(
      act(async () => {
        // From before its code loads (a signal then ended the process at once).
        const held = holdSignals();
        // Loaded here, not up front: a client command needs none of the worker.
        const { runWorkerCommand } = await import('./worker-command.js');
        return runWorkerCommand(
          {
            env: io.env,
            cwd: io.cwd,
            platform: io.platform,
            stderr: (line) => io.stderr(`${line}\n`),
          },
          held,
        );
      }),
    );
}

function addRunCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('run')
    .description(
      'Enqueue a Claude Code run and print its job id, or with --follow its events until it ends.',
    )
    .argument('<prompt>', 'the prompt; - reads it from stdin (so a big prompt never goes on argv)')
    .option('--cwd <dir>', "working directory, relative to the worker's WORK_DIR")
    .option('--tools <list>', 'comma-separated tools the run may use (e.g. "Read,Bash(git log:*)")')
    .option('--disallowed-tools <list>', 'comma-separated tools the run must not use')
    .option('--timeout <seconds>', "stop the run after this long (default: the worker's)")
    .option('--idle-timeout <seconds>', 'stop the run when it prints nothing for this long')
    .option('--resume <sessionId>', 'continue this Claude session (a UUID)')
    .option('--session-scope <scope>', 'the sessions this job may resume (set per tenant)')
    .option('--model <name>', 'model name or alias')
    .option('--max-turns <n>', 'stop after this many turns')
    .option('--permission-mode <mode>', `one of ${PERMISSION_MODES.join(', ')}`)
    .option('--append-system-prompt <text>', 'text added to the system prompt')
    .option(
      '--profile <name>',
      "one of the worker's profiles (PROFILES_FILE): MCP servers, settings",
    )
    .option('--max-budget-usd <dollars>', 'what the job may spend in all, across its attempts')
    .option(
      '--json-schema <file-or-json>',
      'the answer must be JSON valid against this JSON Schema (inline, or a file)',
    )
    .option('--system-prompt <text>', "replaces the CLI's system prompt")
    .option('--fallback-model <name>', 'model to use when the main one is busy or unavailable')
    .option('--effort <level>', `one of ${EFFORT_LEVELS.join(', ')}`)
    .option('--builtin-tools <list>', 'comma-separated built-in tools that exist at all ("": none)')
    .option(
      '--add-dir <dir>',
      'another directory the run may work in, relative to WORK_DIR (repeatable)',
      (dir: string, dirs: string[] | undefined) => [...(dirs ?? []), dir],
    )
    .option('--include-partial-messages', 'also stream partial message chunks as they arrive')
    .option('--fork-session', 'with --resume: continue a copy, leaving the session as it is')
    .option(
      '--workspace-source <source>',
      'run in a checkout of this git source (with --workspace-ref)',
    )
    .option('--workspace-ref <ref>', 'the branch, tag or commit of --workspace-source to check out')
    .option('--workspace-commit', "commit the run's change on a branch named after the job")
    .option('--attempts <n>', 'attempts in all, counting retries after a failure (default 1)')
    .option('--follow', "print the job's events live; the exit code follows the run")
    .option('--json', 'with --follow: one raw event JSON per line instead of text')
    .addOption(
      new Option(
        '--on-interrupt <what>',
        'what Ctrl-C does to the job (default: ask at a terminal, else cancel)',
      ).choices(INTERRUPT_POLICIES),
    )
    .addHelpText('after', `${interruptHelp('cancel')}\n${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`)
    .action(act((prompt: string, options: RunOptions) => runRunCommand(prompt, options, io)));
}

function addEventsCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('events')
    .description("Print a job's events, following it live until it ends.")
    .argument('<jobId>', 'the job')
    .option('--from <seq>', 'start at this event number (default 1: everything)')
    .option('--json', 'one raw event JSON per line instead of text')
    .option('--no-follow', 'print what the history holds now and exit')
    .addOption(
      new Option(
        '--on-interrupt <what>',
        'what Ctrl-C does to the job (default: ask at a terminal, else detach)',
      ).choices(INTERRUPT_POLICIES),
    )
    .addHelpText('after', `${interruptHelp('detach')}\n${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`)
    .action(act((jobId: string, options: EventsOptions) => runEventsCommand(jobId, options, io)));
}

function addResultCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('result')
    .description("Print a finished job's result (ExecuteResult) as JSON.")
    .argument('<jobId>', 'the job')
    .option('--wait <seconds>', 'wait this long for the job to finish (default 0)')
    .addHelpText('after', `${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`)
    .action(act((jobId: string, options: ResultOptions) => runResultCommand(jobId, options, io)));
}

function addPatchCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('patch')
    .description(
      'Print the change a job made in its workspace, as a patch: `claudebox patch <jobId> | git apply`.',
    )
    .argument('<jobId>', 'the job')
    .addHelpText('after', `${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`)
    .action(act((jobId: string) => runPatchCommand(jobId, io)));
}

function addCancelCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('cancel')
    .description('Cancel a job: stop its run, or make sure it never starts.')
    .argument('<jobId>', 'the job')
    .option('--reason <text>', `why, recorded in the job's error (default "cancelled by request")`)
    .addHelpText('after', `${ENVIRONMENT_HELP}\n${EXIT_CODES_HELP}`)
    .action(act((jobId: string, options: CancelOptions) => runCancelCommand(jobId, options, io)));
}

const SERVE_HELP = `
Environment (besides REDIS_URL, QUEUE_NAME, QUEUE_PREFIX, EVENTS_PUBSUB; see docs/gateway.md):
  GATEWAY_PORT                 the port (default 8090)
  GATEWAY_HOST                 the address (default 127.0.0.1)
  GATEWAY_OPERATOR_TOKEN       the token that reads every job, lists jobs, opens the board
  GATEWAY_SECRET               the key of per-job read tokens (client.readToken)
  GATEWAY_SLOW_CLIENT_SECONDS  how long an event stream may go unread (default 30)
  GATEWAY_MAX_STREAMS          event streams open at once (default 1000)
At least one of GATEWAY_OPERATOR_TOKEN and GATEWAY_SECRET must be set.`;

function addServeCommand(program: Command, io: CliIo, act: Act): void {
  program
    .command('serve')
    .description(
      "Serve jobs' events over HTTP (Server-Sent Events), their state, and a live page, until SIGTERM or SIGINT.",
    )
    .option('--port <port>', 'the port (default GATEWAY_PORT, else 8090)')
    .option('--host <address>', 'the address (default GATEWAY_HOST, else 127.0.0.1)')
    .option('--board', 'also serve Bull Board at /board (needs GATEWAY_OPERATOR_TOKEN)')
    .addHelpText('after', `${SERVE_HELP}\n${EXIT_CODES_HELP}`)
    .action(
      act(async (options: ServeOptions) => {
        // Loaded here, not up front: the worker and the client commands need none of the gateway.
        const { runServeCommand } = await import('./serve-command.js');
        return runServeCommand(options, io);
      }),
    );
}

function packageVersion(): string {
  // The same path from src/cli and dist/cli.
  const raw = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(raw) as { version: string }).version;
}
