import { realpath, stat } from 'node:fs/promises';
import type { DestinationStream } from 'pino';
import { ConfigError, loadConfig, redactUrl } from '../config/config.js';
import { createLogger } from '../config/logger.js';
import { loadProfiles } from '../config/profiles.js';
import { ClaudeBinaryError, resolveClaudeBinary } from '../executor/index.js';
import { IsolationError } from '../isolation/index.js';
import { startWorker, type ClaudeboxWorker, type WorkerDeps } from '../worker/runtime/worker.js';
import { holdSignals, type HeldSignals } from './held-signals.js';
import { limitHeapGrowth } from './heap-growth.js';
import { redisProblem } from './redis-probe.js';

/** Beyond the grace times, what a shutdown may take to write its last events and requeue. */
const SHUTDOWN_SLACK_MS = 15_000;
/**
 * One Ctrl-C on `npm start` in a terminal reaches the worker twice within a few ms: the terminal
 * signals the whole process group, and npm passes its own copy on. The same signal again this
 * soon is that one, not an operator's second.
 */
const SAME_SIGNAL_MS = 300;

export interface WorkerCommandIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** process.platform */
  readonly platform: NodeJS.Platform;
  /** Where start-up errors go, one line each. */
  readonly stderr: (line: string) => void;
  readonly logDestination?: DestinationStream;
}

/**
 * `claudebox worker`: validates the configuration, checks Redis and the CLI, runs a worker until
 * SIGTERM or SIGINT, then shuts down gracefully. Resolves with the process's exit code.
 */
export async function runWorkerCommand(
  io: WorkerCommandIo,
  // A signal during start-up is held, not fatal: the worker starts, then shuts down as asked.
  held: HeldSignals = holdSignals(),
): Promise<number> {
  limitHeapGrowth();
  let started: Checked<Started>;
  try {
    started = await startUp(io, held.signals);
  } finally {
    held.release();
  }
  if ('problem' in started) {
    io.stderr(`claudebox: ${started.problem}`);
    return 1;
  }
  const { worker, deps } = started.value;
  logReady(worker, deps);
  return runUntilSignal(worker, deps, held.signals);
}

/** A start-up step's outcome: the value the next steps need, or why the worker cannot start. */
type Checked<T> = { readonly value: T } | { readonly problem: string };

interface Started {
  readonly worker: ClaudeboxWorker;
  readonly deps: WorkerDeps;
}

/**
 * The checks in turn, then the worker. A mistake in the setup comes back as its one-line problem,
 * not as a stack trace: the operator is to fix the setup, not to debug.
 */
async function startUp(
  io: WorkerCommandIo,
  held: readonly NodeJS.Signals[],
): Promise<Checked<Started>> {
  if (io.platform !== 'linux') {
    // A run's processes are found through /proc, which only Linux has.
    return { problem: `the worker runs on Linux only (this is ${io.platform})` };
  }
  const loaded = await expecting(ConfigError, () => loadConfig(io.env));
  if ('problem' in loaded) return loaded;
  const config = loaded.value;
  const profiles = await expecting(ConfigError, () => loadProfiles(config.PROFILES_FILE));
  if ('problem' in profiles) return profiles;
  const logger = createLogger(config.LOG_LEVEL, io.logDestination);
  const workDir = await realWorkDir(config.WORK_DIR ?? io.cwd);
  if ('problem' in workDir) return workDir;
  const claude = await expecting(ClaudeBinaryError, () =>
    resolveClaudeBinary(config.CLAUDE_BIN, io.env.PATH),
  );
  if ('problem' in claude) return claude;
  const problem = await redisProblem(config.REDIS_URL);
  if (problem !== null) return { problem };
  const deps: WorkerDeps = {
    config,
    env: io.env,
    logger,
    claude: claude.value,
    workDir: workDir.value,
    profiles: profiles.value,
    // A worker asked to stop while it started takes no job.
    takesJobs: () => held.length === 0,
  };
  const worker = await expecting(IsolationError, () => startWorker(deps));
  if ('problem' in worker) return worker;
  return { value: { worker: worker.value, deps } };
}

/** The step's value, or the message of the error that means the setup is wrong (not a bug). */
async function expecting<T>(
  expected: abstract new (...args: never[]) => Error,
  step: () => T | Promise<T>,
): Promise<Checked<T>> {
  try {
    return { value: await step() };
  } catch (error) {
    if (error instanceof expected) return { problem: error.message };
    throw error;
  }
}

async function realWorkDir(setting: string): Promise<Checked<string>> {
  const named = `WORK_DIR=${JSON.stringify(setting)}`;
  try {
    const value = await realpath(setting);
    if (!(await stat(value)).isDirectory()) return { problem: `${named}: not a directory` };
    return { value };
  } catch {
    return { problem: `${named}: no such directory` };
  }
}

function logReady(
  worker: ClaudeboxWorker,
  { config, logger, workDir, claude, profiles }: WorkerDeps,
): void {
  logger.info(
    {
      workerId: worker.id,
      queue: config.QUEUE_NAME,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.CONCURRENCY,
      redis: redactUrl(config.REDIS_URL),
      workDir,
      claude: claude.path,
      claudeFrom: claude.source,
      health: worker.healthUrl,
      isolation: worker.isolation,
      profiles: [...(profiles?.keys() ?? [])],
    },
    'worker ready',
  );
}

/**
 * Resolves with the exit code once the first SIGTERM or SIGINT's graceful shutdown is over;
 * a second signal stops the runs at once (the same one within SAME_SIGNAL_MS is not a second).
 */
function runUntilSignal(
  worker: ClaudeboxWorker,
  { config, logger }: WorkerDeps,
  held: readonly NodeJS.Signals[],
): Promise<number> {
  const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
  return new Promise<number>((resolve) => {
    let first: { readonly signal: NodeJS.Signals; readonly at: number } | null = null;
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      const now = Date.now();
      if (signals === 1 && first?.signal === signal && now - first.at < SAME_SIGNAL_MS) return;
      signals++;
      if (signals === 1) {
        first = { signal, at: now };
        logger.info({ signal }, 'signal received');
        void worker.shutdown(graceMs).then(() => resolve(0));
        // Requeueing needs Redis: without it the shutdown could wait forever. The runs are
        // stopped by then, and a job left active is taken over once its lock expires.
        const limit = graceMs + config.KILL_GRACE_SECONDS * 1000 + SHUTDOWN_SLACK_MS;
        setTimeout(() => {
          logger.error(
            { limitMs: limit },
            'shutdown did not finish in time (is Redis reachable?); exiting',
          );
          resolve(1);
        }, limit).unref();
      } else {
        // A second signal: the operator does not want to wait out the grace time.
        logger.warn({ signal }, 'second signal: stopping runs now');
        void worker.shutdown(0);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    for (const signal of held) onSignal(signal);
  });
}
