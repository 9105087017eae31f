import { realpath } from 'node:fs/promises';
import type { DestinationStream } from 'pino';
import { ConfigError, loadConfig, redactUrl } from '../config/config.js';
import { createLogger } from '../config/logger.js';
import { loadProfiles } from '../config/profiles.js';
import { ClaudeBinaryError, resolveClaudeBinary } from '../executor/index.js';
import { IsolationError } from '../isolation/index.js';
import { startWorker } from '../worker/runtime/worker.js';
import { redisProblem } from './redis-probe.js';

/** Beyond the grace times, what a shutdown may take to write its last events and requeue. */
const SHUTDOWN_SLACK_MS = 15_000;

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
export async function runWorkerCommand(io: WorkerCommandIo): Promise<number> {
  const fail = (message: string): number => {
    io.stderr(`claudebox: ${message}`);
    return 1;
  };
  if (io.platform !== 'linux') {
    // A run's processes are found through /proc, which only Linux has.
    return fail(`the worker runs on Linux only (this is ${io.platform})`);
  }
  let config;
  let profiles;
  try {
    config = loadConfig(io.env);
    profiles = await loadProfiles(config.PROFILES_FILE);
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL, io.logDestination);

  const workDirSetting = config.WORK_DIR ?? io.cwd;
  let workDir: string;
  try {
    workDir = await realpath(workDirSetting);
  } catch {
    return fail(`WORK_DIR=${JSON.stringify(workDirSetting)}: no such directory`);
  }

  let claude;
  try {
    claude = await resolveClaudeBinary(config.CLAUDE_BIN, io.env.PATH);
  } catch (error) {
    if (error instanceof ClaudeBinaryError) return fail(error.message);
    throw error;
  }

  const problem = await redisProblem(config.REDIS_URL);
  if (problem !== null) return fail(problem);

  let worker;
  try {
    worker = await startWorker({ config, env: io.env, logger, claude, workDir, profiles });
  } catch (error) {
    if (error instanceof IsolationError) return fail(error.message);
    throw error;
  }
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
      profiles: [...profiles.keys()],
    },
    'worker ready',
  );

  const graceMs = config.SHUTDOWN_GRACE_SECONDS * 1000;
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
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
  });
}
