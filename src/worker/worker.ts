import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { ExecuteResult, QueueAddress } from '../contract/index.js';
import type { ClaudeBinary } from '../executor/index.js';
import { startWatchdog } from '../watchdog/watchdog.js';
import { ActiveRuns } from './active-runs.js';
import { listenForCancels } from './cancel-listener.js';
import { openConnections, withTimeout } from './connections.js';
import { startHealthServer, type Readiness } from './health.js';
import { createMetrics } from './metrics.js';
import { createProcessor } from './process-job.js';
import { EventPublisher } from './publisher.js';
import { setUpIsolation, type Isolation } from '../isolation/index.js';
import { LocalTranscripts, RedisTranscripts, SessionStore } from './sessions.js';

export interface WorkerDeps {
  readonly config: Config;
  /** The worker's environment: the CLI's allow-listed one is taken from it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly claude: ClaudeBinary;
  /** WORK_DIR as a real path. */
  readonly workDir: string;
  readonly now?: () => number;
}

export interface ClaudeboxWorker {
  readonly id: string;
  readonly worker: Worker<unknown, ExecuteResult>;
  /** Where /healthz, /readyz and /metrics answer, when HEALTH_PORT is not 0. */
  readonly healthUrl: string | null;
  /** How this worker's runs are isolated. */
  readonly isolation: Isolation['summary'];
  readiness(): Promise<Readiness>;
  /**
   * Stops taking jobs and lets active runs finish for up to `graceMs`; then stops them and
   * puts their jobs back in the queue without spending an attempt.
   */
  shutdown(graceMs: number): Promise<void>;
}

export async function startWorker(deps: WorkerDeps): Promise<ClaudeboxWorker> {
  const { config, logger, env } = deps;
  const now = deps.now ?? Date.now;
  const id = randomUUID();
  const address: QueueAddress = { prefix: config.QUEUE_PREFIX, queueName: config.QUEUE_NAME };
  const claudeConfigDir = env.CLAUDE_CONFIG_DIR ?? join(env.HOME ?? homedir(), '.claude');
  // Before anything connects: `required` refuses to start without it.
  const isolation = await setUpIsolation({
    mode: config.RUN_ISOLATION,
    namespaces: config.RUN_NAMESPACES,
    runRoot: config.RUN_ROOT,
    uidBase: config.RUN_UID_BASE,
    uidCount: config.RUN_UID_COUNT,
    concurrency: config.CONCURRENCY,
    workDir: deps.workDir,
    claudeBin: deps.claude.path,
    workerId: id,
    path: env.PATH,
    sharedConfigDir: claudeConfigDir,
  });
  if (isolation.summary.mode === 'off') {
    logger.warn(
      { isolation: 'off', reason: isolation.summary.reason },
      'RUNS ARE NOT ISOLATED: every run executes as the worker itself and can read its environment, its files and other runs (see the security model in the README)',
    );
  }
  const connections = openConnections(config.REDIS_URL, logger);
  const watchdog = await startWatchdog(id, isolation.leases);
  const runs = new ActiveRuns(now);

  // Sampled at scrape time, by when the publisher exists.
  const metrics = createMetrics({
    activeRuns: () => runs.size,
    bufferedBytes: () => publisher.bufferedBytes,
  });
  const publisher = new EventPublisher({
    redis: connections.events,
    address,
    maxLen: config.EVENTS_MAX_LEN,
    ttlSeconds: config.EVENTS_TTL_SECONDS,
    bufferBytes: config.EVENT_BUFFER_BYTES,
    now,
    onDropped: (count) => metrics.eventsDropped(count),
    onPublishError: () => metrics.publishError(),
  });

  const sink =
    config.SESSION_STORE === 'redis'
      ? new RedisTranscripts(connections.commands, address, config.SESSION_TTL_SECONDS)
      : isolation.summary.mode === 'uid'
        ? new LocalTranscripts(join(config.RUN_ROOT, 'sessions'))
        : null;
  const sessions = sink && new SessionStore(sink, config.SESSION_MAX_BYTES);

  const processor = createProcessor({
    settings: {
      workDir: deps.workDir,
      defaultTimeoutSeconds: config.DEFAULT_TIMEOUT_SECONDS,
      maxTimeoutSeconds: config.MAX_TIMEOUT_SECONDS,
      allowedPermissionModes: config.ALLOWED_PERMISSION_MODES,
      maxOutputBytes: config.MAX_OUTPUT_BYTES,
      maxPromptBytes: config.MAX_PROMPT_BYTES,
      maxLineBytes: config.MAX_LINE_BYTES,
      killGraceMs: config.KILL_GRACE_SECONDS * 1000,
      sessionSyncMs: config.SESSION_SYNC_SECONDS * 1000,
      eventsTtlSeconds: config.EVENTS_TTL_SECONDS,
      extraEnv: config.CLAUDE_ENV,
    },
    claudeBin: deps.claude.path,
    workerId: id,
    envSource: env,
    redis: connections.commands,
    address,
    publisher,
    sessions,
    isolation,
    runs,
    logger,
    now,
    onFinished: (result) => metrics.attemptFinished(result),
  });

  const cancels = await listenForCancels({
    subscriber: connections.subscriber,
    redis: connections.commands,
    address,
    runs,
    logger,
  });

  const lockMs = config.LOCK_DURATION_SECONDS * 1000;
  const worker = new Worker<unknown, ExecuteResult>(config.QUEUE_NAME, processor, {
    connection: connections.commands,
    prefix: config.QUEUE_PREFIX,
    concurrency: config.CONCURRENCY,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    // A stall spends an attempt like a failure does, and the processor counts both: a job out
    // of attempts must still end through it, with a terminal event and an ExecuteResult, which
    // BullMQ's own stall limit would skip.
    maxStalledCount: Number.MAX_SAFE_INTEGER,
    name: `claudebox:${id}`,
    // Consuming starts last, once everything it needs (health server included) is up.
    autorun: false,
  });
  let lastError = '';
  worker.on('error', (error: Error) => {
    // BullMQ reports each failed Redis call of its loop; one line per distinct trouble is enough.
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn({ err: error.message }, 'queue error');
  });
  const abandon = (jobIds: readonly string[], message: string): void => {
    for (const jobId of jobIds) {
      logger.warn({ jobId, reason: message }, 'stopping a run whose job is no longer ours');
      runs.stop(jobId, { cause: 'abandoned', message });
    }
  };
  worker.on('lockRenewalFailed', (jobIds: string[]) => {
    abandon(jobIds, 'the job lock was lost to another worker');
  });
  worker.on('locksRenewed', ({ jobIds }: { jobIds: string[] }) => runs.lockRenewed(jobIds));
  // Cut off from Redis past the lock's duration, this worker cannot renew its locks and
  // another one may take the jobs over: their runs stop here rather than run twice.
  const lockWatch = setInterval(() => {
    abandon(runs.unlocked(lockMs), `the job lock could not be renewed for ${lockMs / 1000}s`);
  }, 1000);
  lockWatch.unref();

  const queue = new Queue(config.QUEUE_NAME, {
    connection: connections.commands,
    prefix: config.QUEUE_PREFIX,
  });
  // Its connection is the worker's, whose trouble is logged already.
  queue.on('error', () => undefined);
  const readiness = async (): Promise<Readiness> => {
    const checks: Record<string, boolean | string> = {};
    checks.consuming = worker.isRunning() && !worker.closing;
    try {
      const blocking = await worker.backend.blockingClient;
      checks.blockingConnection = blocking?.status === 'ready';
      await withTimeout(connections.commands.ping(), 1000);
      checks.redis = true;
    } catch (error) {
      checks.redis = error instanceof Error ? error.message : String(error);
    }
    checks.events = connections.events.status === 'ready';
    return {
      ready: Object.values(checks).every((value) => value === true),
      checks,
      isolation: isolation.summary,
    };
  };

  let health: Server | null = null;
  if (config.HEALTH_PORT !== 0) {
    try {
      health = await startHealthServer({
        port: config.HEALTH_PORT,
        host: config.HEALTH_HOST,
        readiness,
        metrics: metrics.registry,
        extraMetrics: () => queue.exportPrometheusMetrics(),
      });
    } catch (error) {
      // Nothing was consumed yet: put back what was started and say what is wrong.
      clearInterval(lockWatch);
      await cancels.close();
      await Promise.all([worker.close(), queue.close()]);
      await watchdog.stop();
      await connections.close();
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(
        `HEALTH_PORT=${config.HEALTH_PORT}: cannot listen on ${config.HEALTH_HOST}: ${why}`,
      );
    }
  }
  const healthAddress = health?.address();
  const healthUrl =
    healthAddress && typeof healthAddress === 'object'
      ? `http://${config.HEALTH_HOST === '0.0.0.0' ? '127.0.0.1' : config.HEALTH_HOST}:${healthAddress.port}`
      : null;

  let shuttingDown: Promise<void> | null = null;
  let grace: NodeJS.Timeout | undefined;
  const stopRuns = (): void => {
    clearTimeout(grace);
    if (runs.size > 0)
      logger.warn({ jobIds: runs.ids() }, 'stopping runs and requeueing their jobs');
    // Also stops a run that begins from now on (a job fetched just as the shutdown began).
    runs.stopAll({
      cause: 'shutdown',
      message: 'the worker shut down; the job went back to the queue',
    });
  };
  const shutdown = (graceMs: number): Promise<void> => {
    // A second call (a second signal, say) may cut the grace time short.
    if (shuttingDown) {
      if (graceMs === 0) stopRuns();
      return shuttingDown;
    }
    logger.info({ activeRuns: runs.size, graceMs }, 'shutting down: no new jobs');
    grace = setTimeout(stopRuns, graceMs);
    shuttingDown = (async () => {
      await worker.close();
      clearTimeout(grace);
      clearInterval(lockWatch);
      await cancels.close();
      await publisher.flushAll(5000);
      await queue.close();
      await watchdog.stop();
      await new Promise<void>((resolve) => (health ? health.close(() => resolve()) : resolve()));
      await connections.close();
      logger.info('worker stopped');
    })();
    return shuttingDown;
  };

  worker.run().catch((error: unknown) => {
    logger.error({ err: error }, 'the worker stopped consuming');
  });
  return { id, worker, healthUrl, isolation: isolation.summary, readiness, shutdown };
}
