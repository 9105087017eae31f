#!/usr/bin/env node
import { processIo } from './process-io.js';
import { runCli } from './program.js';

const exitCode = await runCli(process.argv.slice(2), processIo());
process.exitCode = exitCode;
// Anything still holding the event loop (a slow Redis goodbye) must not keep the shell waiting.
setTimeout(() => process.exit(exitCode), 2000).unref();
