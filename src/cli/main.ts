#!/usr/bin/env node
import { Command } from 'commander';
import { runWorkerCommand } from './worker-command.js';

const program = new Command()
  .name('claudebox')
  .description('Runs Claude Code as background jobs on a BullMQ queue.')
  .showHelpAfterError();

program
  .command('worker')
  .description('Start a worker (configured by environment variables; see the README).')
  .action(async () => {
    process.exitCode = await runWorkerCommand({
      env: process.env,
      cwd: process.cwd(),
      stderr: (line) => process.stderr.write(`${line}\n`),
    });
  });

await program.parseAsync(process.argv);
