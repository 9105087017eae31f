import { processIo } from '../src/index.js';
import { runTools } from './program.js';

/** Resolves on the first SIGINT or SIGTERM; until then they do not end the process. */
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

const exitCode = await runTools(process.argv.slice(2), processIo(), stopSignal);
process.exitCode = exitCode;
// Anything still holding the event loop (a slow Redis goodbye) must not keep the shell waiting.
setTimeout(() => process.exit(exitCode), 2000).unref();
