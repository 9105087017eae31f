import { z } from 'zod';
import { MAX_TIMEOUT_SECONDS, PERMISSION_MODES, queueHashTag } from '../contract/index.js';
import { decimal, integer, NOT_DECIMAL, variablesSet } from '../common/environment.js';
import { parseRedisTarget, redisSecrets, RedisUrlError } from './redis-url.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The health server's port when HEALTH_PORT is unset (and free). */
export const DEFAULT_HEALTH_PORT = 8080;

const seconds = (max = Infinity, maxMessage = `must be at most ${max}`) =>
  z.preprocess(
    decimal,
    z.number({ error: NOT_DECIMAL }).positive('must be positive').max(max, maxMessage),
  );

/**
 * The longest a duration a worker's timers count may be: a Node.js timer past 2^31 - 1 ms fires
 * at once, and shutdown adds three of them up.
 */
const MAX_TIMER_SECONDS = 86_400;
const timerMax = [MAX_TIMER_SECONDS, `must be at most ${MAX_TIMER_SECONDS} (a day)`] as const;

/** A wait the worker times that may be 0: none. */
const graceSeconds = () =>
  z.preprocess(
    decimal,
    z
      .number({ error: NOT_DECIMAL })
      .min(0, 'must not be negative')
      .max(...timerMax),
  );

const nonEmpty = () => z.string().trim().min(1, 'must not be empty');

const commaList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value) =>
      value
        .split(',')
        .map((name) => name.trim())
        .filter(Boolean),
    );

/** Variables that hold the worker's own secrets: CLAUDE_ENV may never hand them to a run. */
export const WORKER_SECRETS: readonly string[] = ['REDIS_URL', 'OTEL_EXPORTER_OTLP_HEADERS'];

/**
 * Every setting of a worker, read from the environment. docs/configuration.md is rendered from
 * these descriptions and defaults (npm run docs).
 */
export const ConfigSchema = z.object({
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .superRefine(checkRedisUrl)
    .describe(
      "One Redis: a `redis://` or `rediss://` URL. A Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port...]` (some of its nodes; QUEUE_PREFIX or QUEUE_NAME then needs a hash tag). Sentinel: `redis+sentinel://[user:password@]host:port[,host:port...]/masterName[?sentinelPassword=...]` (the sentinels; the user and password are the primary's). `rediss+cluster://` and `rediss+sentinel://` use TLS. Unreachable at start: one line naming it and exit 1, within 5 s. See [Redis Cluster and Sentinel](operations.md#redis-cluster-and-sentinel).",
    ),
  QUEUE_NAME: z
    .string()
    .default('claudebox')
    .refine((value) => /^[A-Za-z0-9_{}.-]+$/.test(value), 'must be letters, digits, _ { } . or -')
    .describe(
      'The BullMQ queue; also part of the name of its event channels (`<QUEUE_PREFIX>:<QUEUE_NAME>:events:<jobId>`) and of its control channel (`<QUEUE_NAME>:control`).',
    ),
  QUEUE_PREFIX: z
    .string()
    .default('bull')
    .refine((value) => /^[A-Za-z0-9_{}.-]+$/.test(value), 'must be letters, digits, _ { } . or -')
    .describe(
      'The BullMQ key prefix, and the start of every other key of the queue. On a Redis Cluster it (or QUEUE_NAME) needs a hash tag such as `{claudebox}`, so that all keys of the queue share one hash slot.',
    ),
  CONCURRENCY: integer(1).default(1).describe('Runs at once per worker.'),
  CLAUDE_BIN: nonEmpty()
    .optional()
    .describe(
      'The CLI to run. Unset: a `claude` on `PATH`, else the one installed with claudebox.',
    ),
  WORK_DIR: nonEmpty()
    .optional()
    .describe(
      'Where runs happen; every `workingDir` must be inside it. Unset: the current directory.',
    ),
  DEFAULT_TIMEOUT_SECONDS: seconds(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS}`)
    .default(3600)
    .describe(`The timeout of jobs that set no \`timeout\` (at most ${MAX_TIMEOUT_SECONDS}).`),
  MAX_TIMEOUT_SECONDS: seconds(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS}`)
    .default(86400)
    .describe(
      `The longest \`timeout\` a job may ask for (at most ${MAX_TIMEOUT_SECONDS}); at least \`DEFAULT_TIMEOUT_SECONDS\`.`,
    ),
  ALLOWED_PERMISSION_MODES: commaList(
    PERMISSION_MODES.filter((mode) => mode !== 'bypassPermissions').join(','),
  )
    .refine(
      (modes) => modes.every((mode) => (PERMISSION_MODES as readonly string[]).includes(mode)),
      `must be a comma-separated list of ${PERMISSION_MODES.join(', ')}`,
    )
    .describe(
      'The `permissionMode`s a job may ask for, comma-separated: by default every mode but `bypassPermissions`.',
    ),
  RUN_ISOLATION: z
    .enum(['auto', 'required', 'off'], { error: 'must be auto, required or off' })
    .default('auto')
    .describe(
      'Whether each run gets a uid, home and working directory of its own: `auto` where the worker can (else one loud warning), `required` or refuse to start, `off` never.',
    ),
  RUN_NAMESPACES: z
    .enum(['auto', 'off'], { error: 'must be auto or off' })
    .default('auto')
    .describe(
      '`auto`: isolated runs also get PID, IPC and mount namespaces where `bwrap` can make them; `off`: the uid alone.',
    ),
  RUN_ROOT: nonEmpty()
    .default('/var/lib/claudebox')
    .refine((value) => value.startsWith('/'), 'must be an absolute path')
    .describe(
      "Root's directory (an absolute path, not on a `noexec` file system) for run homes, scratch working directories, uid leases, kept sessions and the shell that kills as a run's uid are sent from; workers of one host share it.",
    ),
  RUN_UID_BASE: integer(1, 4_000_000_000, 'must be at most 4000000000')
    .default(50000)
    .describe(
      'The first uid of the pool runs execute as (uids that are accounts in `/etc/passwd` are skipped). Workers on one host share RUN_ROOT, whose lease files hand each uid to one run at a time, or use ranges that do not overlap: a worker clears a uid it takes (kills its processes).',
    ),
  RUN_UID_COUNT: integer(1, 1_000_000, 'must be at most 1000000')
    .default(1000)
    .describe(
      'The size of the uid pool: runs at once on this host, all workers together; at least `CONCURRENCY`.',
    ),
  RUN_MAX_PROCESSES: integer(0, 4_194_304, 'must be at most 4194304')
    .default(2048)
    .describe(
      "The processes and threads an isolated run may have at once (its uid's `RLIMIT_NPROC`): a fork bomb stops there, not when the host has no pid left; `0`: the worker's own (soft) limit, `ulimit -u`. A worker refuses to start with more than its own limit, and warns where `CONCURRENCY` runs of this many could take every pid it has (`kernel.pid_max`, `kernel.threads-max`, its cgroup's `pids.max`).",
    ),
  SCRATCH_SWEEP_SECONDS: integer(1, ...timerMax)
    .default(600)
    .describe(
      "How often a worker that isolates runs sweeps the scratch directories of its queue's jobs (`RUN_ROOT/scratch`, where a job that names no working directory works; also once at start): one whose job is over or gone from Redis (removed while it waited for its next attempt, say) is removed, but where a run is in it or could still be. Workers sharing `RUN_ROOT` must share their Redis too, or differ in `QUEUE_PREFIX` or `QUEUE_NAME`.",
    ),
  MAX_OUTPUT_BYTES: integer(1024)
    .default(64 * KiB)
    .describe(
      "The cap of `ExecuteResult.output` (head and tail kept), and of its `finalOutput` and its `structuredOutput` (as JSON) each. The job's return value (and BullMQ's `completed` event) carries them, so they are what a kept job costs in Redis; the whole output, result line included, stays in the job's history.",
    ),
  MAX_PROMPT_BYTES: integer(1)
    .default(4 * MiB)
    .describe('Larger prompts are rejected as invalid.'),
  MAX_LINE_BYTES: integer(1024)
    .default(8 * MiB)
    .describe(
      'A longer stdout/stderr line is published in pieces marked `partial`, and not read: a result line that long fails the run, saying so.',
    ),
  SHUTDOWN_GRACE_SECONDS: graceSeconds()
    .default(30)
    .describe(
      'On SIGTERM/SIGINT, how long active runs may finish before they are stopped and requeued.',
    ),
  KILL_GRACE_SECONDS: graceSeconds()
    .default(5)
    .describe(
      'After SIGINT to the CLI on a timeout or a shutdown, how long before every process of the run is killed (a cancel waits at most 1 s, a lost lock not at all).',
    ),
  RESULT_GRACE_SECONDS: z
    .preprocess(
      decimal,
      z
        .number({ error: NOT_DECIMAL })
        .positive('must be a positive number of seconds')
        .max(...timerMax),
    )
    .default(5)
    .describe(
      'How long the CLI may go on after printing its result line before it is stopped; the attempt is then judged by that line (and says it was stopped).',
    ),
  LOCK_DURATION_SECONDS: seconds(...timerMax)
    // Renewed at half of it: a shorter lock is lost to any pause of the worker (a collection, a
    // busy machine), and every job with it, as abandoned.
    .refine((value) => value <= 0 || value >= 1, 'must be at least 1')
    .default(30)
    .describe(
      'The BullMQ job lock (also the stalled-job check interval), at least 1 (it is renewed at half of it): how soon another worker takes over the jobs of a worker that died.',
    ),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('The pino log level.'),
  HEALTH_PORT: integer(0, 65535, 'must be at most 65535')
    .optional()
    .describe(
      `The port of \`/healthz\`, \`/readyz\` and \`/metrics\`; \`0\` turns the server off. Unset: ${DEFAULT_HEALTH_PORT}, or a free port the system picks when ${DEFAULT_HEALTH_PORT} is taken (another worker on the host), named by \`health\` in the \`worker ready\` log line. Set: a port in use stops the start with one line naming it.`,
    ),
  HEALTH_HOST: nonEmpty()
    .default('127.0.0.1')
    .describe(
      'The address the health server listens on: loopback by default, since it has no authentication; `0.0.0.0` (as the Docker image sets) to be scraped from other hosts.',
    ),
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .optional()
    .describe(
      'Set: a span per attempt is sent over OTLP/HTTP (JSON) to `<endpoint>/v1/traces` (`/v1/traces` added to its path, before a query string such as `?tenant=a`), with the headers in `OTEL_EXPORTER_OTLP_HEADERS` (see [Traces](operations.md#traces)). Unset: no tracing at all.',
    ),
  OTEL_SERVICE_NAME: nonEmpty()
    .default('claudebox')
    .describe("The `service.name` of the worker's spans."),
  EVENTS_MAX_LEN: integer(100)
    .default(10000)
    .describe('Events kept per job history (about; older ones are trimmed).'),
  EVENTS_MAX_BYTES: integer(MiB)
    .default(64 * MiB)
    .describe(
      "Bytes of events an attempt keeps in its job's history: once it wrote more, the oldest (an earlier attempt's first) are trimmed, so a run printing long lines cannot fill Redis. A reader is told with a `gap` event, as for `EVENTS_MAX_LEN`.",
    ),
  EVENTS_TTL_SECONDS: integer(1)
    .default(86400)
    .describe("How long a job's history lives after its last terminal event."),
  QUEUE_EVENTS_MAX_BYTES: integer(MiB)
    .default(64 * MiB)
    .describe(
      "About how many bytes BullMQ's own event stream (`<QUEUE_PREFIX>:<QUEUE_NAME>:events`) may hold: its length cap is this divided by the largest entry a job can write there (an ExecuteResult: 5 × `MAX_OUTPUT_BYTES` + 64 KiB). The worker sets it when it starts.",
    ),
  EVENTS_PUBSUB: z
    .enum(['plain', 'sharded'], { error: 'must be plain or sharded' })
    .default('plain')
    .describe(
      "How live events are published on `<prefix>:<queue>:events:<jobId>`: `plain` PUBLISH, or `sharded` SPUBLISH (Redis 7), which a Redis Cluster keeps on the shard of the queue's slot instead of sending to every node. Clients, the CLI and the gateway must use the same (the client's `pubsub` option; the CLI and gateway read this variable).",
    ),
  EVENTS_WAIT_REPLICAS: integer(0, 16, 'must be at most 16')
    .default(0)
    .describe(
      "Replicas that must have a batch of events (Redis `WAIT`, up to 1 s) before it counts as written; else it is written again. `1` on Sentinel (or a cluster with replicas): a failover then loses no event, since Redis replicates asynchronously and a promoted replica lacks the primary's last writes. Costs a replication round trip per batch.",
    ),
  EVENT_BUFFER_BYTES: integer(MiB)
    .default(64 * MiB)
    .describe(
      "Events held in memory while Redis is unreachable, counted as what they take of the worker's memory (each line twice: in the JSON published and in the history entry); past it output lines are dropped and named by a `gap` event.",
    ),
  SESSION_STORE: z
    .enum(['redis', 'off'], { error: 'must be redis or off' })
    .default('redis')
    .describe(
      '`redis`: session transcripts are kept in Redis so retries resume them on any worker; `off`: nothing is kept in Redis (an isolated worker keeps transcripts in `RUN_ROOT/sessions`, for jobs on the same host; an unisolated one starts every attempt afresh).',
    ),
  SESSION_SYNC_SECONDS: seconds(...timerMax)
    .default(0.25)
    .describe(
      "How often what a running session's transcript grew by is shipped (and once when the attempt ends): a worker that dies loses at most this much of the conversation.",
    ),
  SESSION_MAX_BYTES: integer(1024)
    .default(256 * MiB)
    .describe(
      "A transcript larger than this stops being shipped (one warning, and a note in the attempt's events) and is never restored: the retry starts a new session.",
    ),
  SESSION_TTL_SECONDS: integer(60)
    .default(7 * 86400)
    .describe(
      'How long a saved transcript is kept after its last change (every session key expires; with `SESSION_STORE=off`, a transcript in `RUN_ROOT/sessions` goes as well, looked for at most once an hour); resumed later, the job fails as `session-not-found`.',
    ),
  MAX_RATE_LIMIT_DELAYS: integer(0, 1000, 'must be at most 1000')
    .default(5)
    .describe(
      "How many times a job whose run ended on an API 429 (rate limited) or 529 (overloaded) is put back to run again after the API's retry-after (or a backoff from 5 s, doubling, at most 5 min); a 429 spends no attempt, a 529 one. Past it the job fails as `rate-limited`.",
    ),
  CLAUDE_ENV: commaList('')
    .refine(
      (names) => names.every((name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)),
      'must be a comma-separated list of variable names',
    )
    .refine(
      (names) => !names.some((name) => WORKER_SECRETS.includes(name)),
      `must not name the worker's own secrets (${WORKER_SECRETS.join(', ')})`,
    )
    .describe(
      "Extra variable names, comma-separated, passed through to the CLI (never the worker's own secrets: `REDIS_URL`, `OTEL_EXPORTER_OTLP_HEADERS`).",
    ),
  WORKSPACE_SOURCES: commaList('')
    .refine(
      (sources) =>
        sources.every((source) => source.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//.test(source)),
      'must be a comma-separated list of absolute paths and URL prefixes (https://host/org/)',
    )
    .describe(
      "The git sources a job's `workspace.source` may name, comma-separated: absolute directories (a source inside one of them is allowed; a `file:` URL counts as its path, as does a `file:` entry) and URL prefixes (`https://git.example.com/team/`). Empty (the default): no job may ask for a workspace.",
    ),
  WORKSPACE_DIR: nonEmpty()
    .optional()
    .refine((value) => value === undefined || value.startsWith('/'), 'must be an absolute path')
    .describe(
      "Where the worker keeps its cached clones of workspace sources and the jobs' checkouts (an absolute path; jobs cannot name it as `workingDir`). Unset: `.claudebox-workspaces` in `WORK_DIR`.",
    ),
  WORKSPACE_PATCH_MAX_BYTES: integer(1024)
    .default(16 * MiB)
    .describe(
      "The largest patch of a job's workspace kept in Redis; a larger one is kept as a summary (its files and size) and the result says it is truncated.",
    ),
  WORKSPACE_KEEP_FAILED_SECONDS: integer(0)
    .default(0)
    .describe(
      "How long the checkout of a failed attempt stays in `WORKSPACE_DIR/checkouts`, for debugging, before the worker's sweep removes it. 0 (the default): removed at once, like a successful attempt's.",
    ),
  WORKSPACE_STALL_SECONDS: integer(1, 3600, 'must be at most 3600 (an hour)')
    .default(60)
    .describe(
      'A clone or fetch of a workspace source that moves less than 1 KB/s for this long (over HTTP), or takes 60 times as long in all (any transport), is stopped: the attempt fails as `workspace-failed`, retried where the job has attempts left. Without it, a source that never answers would hold the job, and every job of that source, for ever.',
    ),
  WORKSPACE_CACHE_MAX_BYTES: integer(0)
    .default(10 * 1024 * MiB)
    .describe(
      'The most disk the cached clones of workspace sources may use together; past it, the sweep removes the least recently used clones (never one a running job uses) until they fit. 0: no limit.',
    ),
  WORKSPACE_CACHE_MAX_AGE_SECONDS: integer(0)
    .default(7 * 24 * 3600)
    .describe(
      'A cached clone no job has used for this long is removed by the sweep (a later job clones it again). 0: no limit.',
    ),
  WORKSPACE_SWEEP_SECONDS: integer(1, ...timerMax)
    .default(60)
    .describe(
      'How often the worker sweeps `WORKSPACE_DIR` (also once at start): removes checkouts no running attempt holds (left by a worker that crashed, or kept failed ones whose time is over), prunes the cache to its limits, and measures the disk use `/metrics` reports.',
    ),
  PROFILES_FILE: nonEmpty()
    .optional()
    .describe(
      "A JSON file of named profiles (MCP servers, CLI settings, setting sources) a job picks with `profile`; read and checked at start. Secrets in it are `${env:NAME}` references to the worker's environment, filled in when a run starts. See [Profiles](operations.md#profiles).",
    ),
});

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment, or throws a ConfigError naming every bad variable and its value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const present = variablesSet(Object.keys(ConfigSchema.shape), env);
  const parsed = ConfigSchema.safeParse(present);
  if (parsed.success) {
    const config = parsed.data;
    if (config.DEFAULT_TIMEOUT_SECONDS > config.MAX_TIMEOUT_SECONDS) {
      throw new ConfigError(
        `invalid configuration: DEFAULT_TIMEOUT_SECONDS=${config.DEFAULT_TIMEOUT_SECONDS} is over MAX_TIMEOUT_SECONDS=${config.MAX_TIMEOUT_SECONDS}`,
      );
    }
    const unslotted = clusterKeyProblem(config.REDIS_URL, config.QUEUE_PREFIX, config.QUEUE_NAME);
    if (unslotted !== null) throw new ConfigError(`invalid configuration: ${unslotted}`);
    return config;
  }
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0]);
    const value = name === 'REDIS_URL' ? redactUrl(String(present[name])) : present[name];
    return `${name}=${JSON.stringify(value)}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

/** What a client of the queue (the `claudebox` command, the gateway) reads of the environment. */
const CONNECTION_VARIABLES = ['REDIS_URL', 'QUEUE_NAME', 'QUEUE_PREFIX', 'EVENTS_PUBSUB'] as const;
export type ConnectionConfig = Pick<Config, (typeof CONNECTION_VARIABLES)[number]>;

/**
 * The queue's address as the worker reads it, checked as the worker checks it; the worker's
 * other variables are not a client's business, and a bad one of them must not stop it.
 */
export function loadConnectionConfig(
  env: Readonly<Record<string, string | undefined>>,
): ConnectionConfig {
  return loadConfig(Object.fromEntries(CONNECTION_VARIABLES.map((name) => [name, env[name]])));
}

function checkRedisUrl(value: string, context: z.RefinementCtx): void {
  try {
    parseRedisTarget(value);
  } catch (error) {
    if (!(error instanceof RedisUrlError)) throw error;
    context.addIssue({ code: 'custom', message: error.message });
  }
}

/**
 * Why the queue's keys would not share a hash slot on the cluster REDIS_URL names (BullMQ's Lua
 * scripts touch several keys of a queue at once), or null when they would or it is no cluster.
 */
export function clusterKeyProblem(url: string, prefix: string, queueName: string): string | null {
  if (parseRedisTarget(url).kind !== 'cluster' || queueHashTag({ prefix, queueName }) !== null) {
    return null;
  }
  return `QUEUE_PREFIX=${JSON.stringify(prefix)} with QUEUE_NAME=${JSON.stringify(queueName)} has no hash tag: on a Redis Cluster every key of a queue must be in one hash slot; use a hash tag such as QUEUE_PREFIX={claudebox} (or a QUEUE_NAME such as {${queueName.replace(/[{}]/g, '')}})`;
}

/** Query parameters whose values are credentials (ioredis reads `password`, `username`, ...). */
const SECRET_PARAM = /pass|secret|token|key|auth|user|cred/i;

/**
 * The URL with its user info and every query value replaced, for logs, errors and answers: a
 * password can sit in either (`redis://user:pw@host`, `redis://host/?password=pw`). What does
 * not parse as a URL loses whatever could be user info or a query all the same.
 */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    // A password holding '/', '?' or '#' (base64 has '/') ends the user info early: the rest of
    // it reads as a path or a fragment.
    if (`${url.pathname}${url.hash}`.includes('@')) return redactUnparsed(value);
    if (url.username) url.username = '***';
    if (url.password) url.password = '***';
    for (const key of new Set(url.searchParams.keys())) url.searchParams.set(key, '***');
    return url.toString();
  } catch {
    return redactUnparsed(value);
  }
}

/** Everything up to the last '@' could be user info, and everything after a '?' a query. */
function redactUnparsed(value: string): string {
  return value.replace(/\/\/.*@/s, '//***@').replace(/\?.*$/s, '?***');
}

/**
 * `text` (an error message, say) with the URL and its credentials replaced wherever they
 * occur: a driver's message may quote what it was given.
 */
export function redactIn(text: string, url: string): string {
  let redacted = text.split(url).join(redactUrl(url));
  for (const secret of credentialsOf(url)) redacted = redacted.split(secret).join('***');
  return redacted;
}

function credentialsOf(value: string): string[] {
  // The cluster and sentinel forms list several hosts, which is no URL to the URL parser.
  const secrets = redisSecrets(value);
  try {
    const url = new URL(value);
    secrets.push(...[url.username, url.password].flatMap((part) => [part, safeDecode(part)]));
    for (const [key, param] of url.searchParams) if (SECRET_PARAM.test(key)) secrets.push(param);
  } catch {
    // Nothing more to find.
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...new Set(secrets.filter((secret) => secret.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
