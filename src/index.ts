/** What a control plane imports: the contract (schemas and types) and the client. */
export * from './contract/index.js';
export * from './client/index.js';

/** The HTTP gateway (`claudebox serve`), to mount in a control plane's own server. */
export * from './gateway/index.js';

/** A worker in-process, as `claudebox worker` starts one: its settings, its logger, the worker. */
export { loadConfig, redactIn, redactUrl, type Config } from './config/config.js';
export { createLogger } from './config/logger.js';
export { startWorker, type ClaudeboxWorker, type WorkerDeps } from './worker/runtime/worker.js';

/** The claude CLI that `npm install claudebox` brings along (null when it is missing). */
export { bundledBinary } from './executor/index.js';

/** The command line's parts for other command lines: its I/O, and events printed as it prints them. */
export { processIo } from './cli/process-io.js';
export { useColor, writeLines, type CliIo, type Terminal } from './cli/io.js';
export { renderEvent, type RenderOptions } from './cli/render.js';
