import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Queue, type Worker } from 'bullmq';
import type { Logger } from 'pino';
import { redactIn, type Config } from '../../config/config.js';
import { loadProfiles, referencedVariables, type Profiles } from '../../config/profiles.js';
import type { ExecuteResult, QueueAddress } from '../../contract/index.js';
import type { ClaudeBinary } from '../../executor/index.js';
import { startWatchdog } from '../../watchdog/watchdog.js';
import { ActiveRuns } from '../attempt/active-runs.js';
import { listenForCancels } from './cancel-listener.js';
import { openConnections, type WorkerConnections } from '../../redis/connections.js';
import { ReadableWorker } from '../../redis/readable-job.js';
import { healthUrlOf, serveHealth, type Readiness } from './health.js';
import { createMetrics, sampledAtMostEvery } from './metrics.js';
import { createProcessor } from '../attempt/process-job.js';
import { EventPublisher } from '../events/publisher.js';
import {
  capabilityWarnings,
  setUpIsolation,
  weakHostSettings,
  type Isolation,
  type IsolationSettings,
} from '../../isolation/index.js';
import { Closers } from './closers.js';
import { shutdownOf } from './shutdown.js';
import { watchLocks } from './lock-watch.js';
import { REDIS_PROBE_INTERVAL_MS, watchReadiness } from './readiness.js';
import { startTracing, type Tracing } from './tracing.js';
import { jobSettings, sessionStoreFor, sharedClaudeConfigDir, workspaceDirOf } from './settings.js';
import { queueEventsMaxLen } from './queue-events-bound.js';
import { Workspaces } from '../../workspace/index.js';
import { startWorkspaceSweep } from './workspace-sweep.js';
import { startScratchSweep } from './scratch-sweep.js';

export interface WorkerDeps {
  readonly config: Config;
  /** The worker's environment: the CLI's allow-listed one is taken from it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  readonly claude: ClaudeBinary;
  /** WORK_DIR as a real path. */
  readonly workDir: string;
  /** PROFILES_FILE's profiles, read already; unset: read here. */
  readonly profiles?: Profiles;
  readonly now?: () => number;
  /** Where attempt spans go instead of OTEL_EXPORTER_OTLP_ENDPOINT (tests, embedding). */
  readonly spanExporter?: SpanExporter;
  /**
   * Sets up run isolation; setUpIsolation unless given (tests: boxes whose close finds a
   * process of the run still there, which no real run of theirs can make happen).
   */
  readonly setUpIsolation?: (settings: IsolationSettings) => Promise<Isolation>;
  /** Whether to take jobs once started (false: it was asked to stop meanwhile); yes unless given. */
  readonly takesJobs?: () => boolean;
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

/**
 * Starts a worker: run isolation first (`required` refuses to start without it), then Redis,
 * the watchdog, events, sessions, the BullMQ worker, the health server, and consuming last.
 * A start that fails halfway stops what it started, last first, as a shutdown does.
 */
export async function startWorker(deps: WorkerDeps): Promise<ClaudeboxWorker> {
  const id = randomUUID();
  const profiles = deps.profiles ?? (await loadProfiles(deps.config.PROFILES_FILE));
  warnOfUnsetVariables(profiles, deps.env, deps.logger);
  const isolation = await isolate(deps, id);
  const closers = new Closers();
  try {
    const parts = await assemble({ ...deps, profiles }, id, isolation, closers);
    const { readiness, health } = await healthOf(deps, parts, isolation, closers);
    if (deps.takesJobs?.() !== false) {
      parts.worker.run().catch((error: unknown) => {
        deps.logger.error({ err: error }, 'the worker stopped consuming');
      });
    }
    return {
      id,
      worker: parts.worker,
      healthUrl: health && healthUrlOf(health),
      isolation: isolation.summary,
      readiness,
      shutdown: shutdownOf(parts, closers, deps.logger, deps.config.KILL_GRACE_SECONDS * 1000),
    };
  } catch (error) {
    await closers.closeAll(deps.logger);
    throw error;
  }
}

/**
 * A profile whose variables are not set now still loads (a variable may come later in a
 * container's life), but its runs would fail: say so once, by name, at start.
 */
function warnOfUnsetVariables(profiles: Profiles, env: WorkerDeps['env'], logger: Logger): void {
  for (const [name, profile] of profiles) {
    const unset = referencedVariables(profile).filter((variable) => !env[variable]);
    if (unset.length > 0) {
      logger.warn(
        { profile: name, variables: unset },
        'a profile refers to variables the worker does not have: its jobs will fail until they are set',
      );
    }
  }
}

async function isolate(deps: WorkerDeps, workerId: string): Promise<Isolation> {
  const { config, env, logger } = deps;
  const isolation = await (deps.setUpIsolation ?? setUpIsolation)({
    mode: config.RUN_ISOLATION,
    namespaces: config.RUN_NAMESPACES,
    runRoot: config.RUN_ROOT,
    uidBase: config.RUN_UID_BASE,
    uidCount: config.RUN_UID_COUNT,
    concurrency: config.CONCURRENCY,
    maxProcesses: config.RUN_MAX_PROCESSES,
    workDir: deps.workDir,
    claudeBin: deps.claude.path,
    workerId,
    path: env.PATH,
    sharedConfigDir: sharedClaudeConfigDir(env),
  });
  if (isolation.summary.mode === 'off') {
    logger.warn(
      { isolation: 'off', reason: isolation.summary.reason },
      'RUNS ARE NOT ISOLATED: every run executes as the worker itself and can read its environment, its files and other runs (see docs/security.md)',
    );
  } else {
    for (const warning of [...isolation.warnings, ...capabilityWarnings()]) {
      logger.warn(warning);
    }
    for (const { name, value, why } of weakHostSettings()) {
      logger.warn(
        { setting: name, value },
        `the host's ${name} is ${value}, which weakens run isolation: ${why} (see docs/security.md)`,
      );
    }
  }
  return isolation;
}

/** What a running worker is made of. */
interface Parts {
  readonly connections: WorkerConnections;
  readonly runs: ActiveRuns;
  readonly worker: Worker<unknown, ExecuteResult>;
  readonly queue: Queue;
  readonly metrics: ReturnType<typeof createMetrics>;
}

/** Everything but the health server, each part's closer added as it starts. */
async function assemble(
  deps: WorkerDeps & { readonly profiles: Profiles },
  id: string,
  isolation: Isolation,
  closers: Closers,
): Promise<Parts> {
  const { config, logger } = deps;
  const now = deps.now ?? Date.now;
  const address: QueueAddress = { prefix: config.QUEUE_PREFIX, queueName: config.QUEUE_NAME };
  const connections = openConnections(config.REDIS_URL, logger);
  closers.add('redis connections', () => connections.close());
  const tracing = await tracingOf(deps, id, closers);
  const watchdog = await startWatchdog(id, isolation.leases, logger);
  closers.add('watchdog', () => watchdog.stop());
  // Closed before the watchdog, which ends this worker's leases: see UidPool.close.
  closers.add('uid pool', () => isolation.close());
  const runs = new ActiveRuns(now);
  const { publisher, metrics } = eventsAndMetrics(config, connections, address, runs, now);
  if (isolation.summary.mode === 'uid') {
    const everyMs = config.SCRATCH_SWEEP_SECONDS * 1000;
    const sweep = { redis: connections.commands, address, everyMs, metrics, logger };
    closers.add('scratch sweep', startScratchSweep(isolation, sweep));
  }
  closers.add('event publisher', () => publisher.flushAll(5000));
  const cancels = await listenForCancels({
    subscriber: connections.subscriber,
    redis: connections.commands,
    address,
    runs,
    logger,
  });
  closers.add('cancel listener', () => cancels.close());
  const processor = createProcessor({
    settings: jobSettings(config, deps.workDir, deps.profiles),
    claudeBin: deps.claude.path,
    workerId: id,
    envSource: deps.env,
    redis: connections.commands,
    address,
    publisher,
    sessions: sessionStoreFor(config, connections.commands, address, isolation),
    isolation,
    workspaces: await workspacesOf(deps, isolation, metrics, closers),
    runs,
    logger,
    now,
    onFinished: (result) => metrics.attemptFinished(result),
    onCheckpoint: (seconds) => metrics.workspaceCheckpoint(seconds),
    ...(tracing ? { tracing } : {}),
  });
  const { worker, queue } = consumer(config, connections, id, processor, logger);
  closers.add('queue', () => Promise.all([worker.close(), queue.close()]));
  const stopWatching = watchLocks(worker, runs, lockMsOf(config), logger);
  closers.add('lock watch', () => {
    stopWatching();
    return Promise.resolve();
  });
  return { connections, runs, worker, queue, metrics };
}

/** Cached clones and checkouts, when WORKSPACE_SOURCES allows any source; swept as it runs. */
async function workspacesOf(
  { config, workDir, logger }: WorkerDeps,
  isolation: Isolation,
  metrics: ReturnType<typeof createMetrics>,
  closers: Closers,
): Promise<Workspaces | null> {
  if (config.WORKSPACE_SOURCES.length === 0) return null;
  const workspaces = await Workspaces.open({
    dir: workspaceDirOf(config, workDir),
    onClone: () => metrics.workspaceCloned(),
    keepFailedSeconds: config.WORKSPACE_KEEP_FAILED_SECONDS,
    stallSeconds: config.WORKSPACE_STALL_SECONDS,
    runMayBeIn: async (dir) => (await isolation.unclearedReaching([dir])) !== null,
    cacheLimits: {
      maxBytes: config.WORKSPACE_CACHE_MAX_BYTES,
      maxAgeSeconds: config.WORKSPACE_CACHE_MAX_AGE_SECONDS,
    },
  });
  const everyMs = config.WORKSPACE_SWEEP_SECONDS * 1000;
  const stop = await startWorkspaceSweep(workspaces, everyMs, metrics, logger);
  closers.add('workspace sweep', stop);
  return workspaces;
}

/** Spans of attempts, when an exporter or an OTLP endpoint is given; sent last at shutdown. */
async function tracingOf(
  deps: WorkerDeps,
  workerId: string,
  closers: Closers,
): Promise<Tracing | null> {
  const { config } = deps;
  const tracing = await startTracing({
    endpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    exporter: deps.spanExporter,
    serviceName: config.OTEL_SERVICE_NAME,
    workerId,
    queueName: config.QUEUE_NAME,
  });
  if (tracing) closers.add('tracing', () => tracing.shutdown());
  return tracing;
}

function eventsAndMetrics(
  config: Config,
  connections: WorkerConnections,
  address: QueueAddress,
  runs: ActiveRuns,
  now: () => number,
): { publisher: EventPublisher; metrics: ReturnType<typeof createMetrics> } {
  // Sampled at scrape time, by when the publisher exists.
  const metrics = createMetrics({
    activeRuns: () => runs.size,
    bufferedBytes: () => publisher.bufferedBytes,
  });
  const publisher = new EventPublisher({
    redis: connections.events,
    address,
    maxLen: config.EVENTS_MAX_LEN,
    maxBytes: config.EVENTS_MAX_BYTES,
    ttlSeconds: config.EVENTS_TTL_SECONDS,
    bufferBytes: config.EVENT_BUFFER_BYTES,
    pubsub: config.EVENTS_PUBSUB,
    waitReplicas: config.EVENTS_WAIT_REPLICAS,
    now,
    onDropped: (count) => metrics.eventsDropped(count),
    onPublishError: () => metrics.publishError(),
  });
  return { publisher, metrics };
}

/** The BullMQ worker (not consuming yet) and the queue its metrics are read from. */
/** The job lock BullMQ sets, in the whole milliseconds Redis takes. */
const lockMsOf = (config: Config): number => Math.round(config.LOCK_DURATION_SECONDS * 1000);

function consumer(
  config: Config,
  connections: WorkerConnections,
  id: string,
  processor: ReturnType<typeof createProcessor>,
  logger: Logger,
): { worker: Worker<unknown, ExecuteResult>; queue: Queue } {
  const lockMs = lockMsOf(config);
  const worker = new ReadableWorker<unknown, ExecuteResult>(config.QUEUE_NAME, processor, {
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
    logger.warn({ err: redactIn(error.message, config.REDIS_URL) }, 'queue error');
  });
  const maxLen = queueEventsMaxLen(config.QUEUE_EVENTS_MAX_BYTES, config.MAX_OUTPUT_BYTES);
  // This queue writes the cap of BullMQ's event stream into the queue's meta, where BullMQ's
  // scripts read it (the client's and the gateway's queues leave it alone).
  const queue = new Queue(config.QUEUE_NAME, {
    connection: connections.commands,
    prefix: config.QUEUE_PREFIX,
    streams: { events: { maxLen } },
  });
  // Its connection is the worker's, whose trouble is logged already.
  queue.on('error', () => undefined);
  // Any queue opened with BullMQ's defaults (a control plane's) resets that cap to 10,000
  // entries: the stream is trimmed after each job too, which holds whatever the meta says.
  const trim = (): void => void queue.trimEvents(maxLen).catch(() => undefined);
  worker.on('completed', trim);
  worker.on('failed', trim);
  return { worker, queue };
}

/** `/readyz`'s background probe, and the health server when there is one. */
async function healthOf(
  { config, logger }: WorkerDeps,
  parts: Parts,
  isolation: Isolation,
  closers: Closers,
): Promise<{ readiness: () => Promise<Readiness>; health: Server | null }> {
  const watch = watchReadiness(
    parts.worker,
    parts.connections,
    isolation.summary,
    config.REDIS_URL,
  );
  closers.add('readiness probe', () => {
    watch.stop();
    return Promise.resolve();
  });
  const readiness = () => watch.readiness();
  const health = await serveHealth(
    { port: config.HEALTH_PORT, host: config.HEALTH_HOST },
    { readiness, metrics: parts.metrics.registry, extraMetrics: queueMetrics(parts.queue) },
    logger,
  );
  if (health) closers.add('health server', () => closeServer(health));
  return { readiness, health };
}

/** BullMQ's job counts for /metrics: Redis commands at most every few seconds, not per scrape. */
function queueMetrics(queue: Queue): () => Promise<string> {
  return sampledAtMostEvery(() => queue.exportPrometheusMetrics(), REDIS_PROBE_INTERVAL_MS, 1000);
}

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => server.close(() => resolve()));
