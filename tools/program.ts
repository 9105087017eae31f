import { Command, CommanderError } from 'commander';
import type { CliIo } from '../src/index.js';
import { runDemo } from './demo/demo.js';
import {
  readListenOptions,
  serveStandIn,
  STAND_IN_AFTER_HELP,
  STAND_IN_DESCRIPTION,
  STAND_IN_OPTIONS_HELP,
  STAND_IN_SUMMARY,
  STAND_IN_USAGE,
  type StandInCommandOptions,
} from './stand-in/command.js';

/** Exit code of a usage mistake, as claudebox's own commands use it. */
const USAGE_EXIT = 2;

/** `npm run <tool>` is how they are run, so a tool's usage line names the tool alone. */
const USAGE_BY_NAME = {
  commandUsage: (command: Command) => `${command.name()} ${command.usage()}`,
};

/**
 * What tests and demonstrates claudebox, kept out of its package: `npm run demo` and
 * `npm run stand-in` land here. Parses `args` (without the node and script paths) and resolves
 * with the exit code; `io` is everything it touches, and `untilStopped` resolves when the
 * process is asked to stop (it is called only by a command that serves until then).
 */
export async function runTools(
  args: readonly string[],
  io: CliIo,
  untilStopped: () => Promise<unknown>,
): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, untilStopped, (code) => (exitCode = code));
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (error) {
    // Commander's own ends: help (0), usage mistakes (2).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : USAGE_EXIT;
    throw error;
  }
  return exitCode;
}

function buildProgram(
  io: CliIo,
  untilStopped: () => Promise<unknown>,
  setExitCode: (code: number) => void,
): Command {
  // Settings made before .command() are inherited by every subcommand.
  const program = new Command()
    .name('tools')
    .description('Tools to try and test claudebox with; not part of the claudebox package.')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .configureHelp(USAGE_BY_NAME)
    .showHelpAfterError('(add --help for usage)');

  program
    .command('demo')
    .description(
      'Run one job end to end on this machine: private Redis, a worker, the real claude CLI, a scripted model.',
    )
    .action(async () => setExitCode(await runDemo(io)));

  program
    .command('stand-in')
    .usage(STAND_IN_USAGE)
    .summary(STAND_IN_SUMMARY)
    .description(STAND_IN_DESCRIPTION)
    // The description is laid out by hand, a script step a line: commander must not rewrap it.
    .configureHelp({ ...USAGE_BY_NAME, boxWrap: (text) => text })
    .option('--port <N>', STAND_IN_OPTIONS_HELP.port)
    .option('--host <H>', STAND_IN_OPTIONS_HELP.host)
    .helpOption('-h, --help', STAND_IN_OPTIONS_HELP.help)
    .addHelpText('after', STAND_IN_AFTER_HELP)
    // Checked below, to name the argument.
    .allowExcessArguments()
    .configureOutput({
      outputError: (message, write) => write(`stand-in: ${sentence(message)}`),
    })
    .showHelpAfterError('Run with --help for the usage.')
    .action(async (options: StandInCommandOptions, command: Command) => {
      const [unexpected] = command.args;
      if (unexpected !== undefined) {
        command.error(`unexpected argument '${unexpected}'`, { exitCode: USAGE_EXIT });
      }
      const listen = readListenOptions(options);
      if ('error' in listen) command.error(listen.error, { exitCode: USAGE_EXIT });
      setExitCode(await serveStandIn(listen, io, untilStopped));
    });

  return program;
}

/** Commander's `error: unknown option '--x'` as the stand-in says it: `Unknown option '--x'`. */
function sentence(message: string): string {
  const text = message.replace(/^error: /, '');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}`;
}
