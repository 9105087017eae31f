import { z } from 'zod';
import { MAX_TIMEOUT_SECONDS, PERMISSION_MODES } from '../contract/index.js';

const MiB = 1024 * 1024;

const integer = (min: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be at least ${min}`);

const seconds = () => z.coerce.number({ error: 'must be a number' }).positive('must be positive');

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
const WORKER_SECRETS = ['REDIS_URL'];

/** Every setting of a worker, read from the environment (see the README's table). */
export const ConfigSchema = z.object({
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .refine(isRedisUrl, 'must be a redis:// or rediss:// URL'),
  QUEUE_NAME: z
    .string()
    .default('claudebox')
    .refine((value) => /^[A-Za-z0-9_{}.-]+$/.test(value), 'must be letters, digits, _ { } . or -'),
  QUEUE_PREFIX: z
    .string()
    .default('bull')
    .refine((value) => /^[A-Za-z0-9_{}.-]+$/.test(value), 'must be letters, digits, _ { } . or -'),
  CONCURRENCY: integer(1).default(1),
  CLAUDE_BIN: nonEmpty().optional(),
  WORK_DIR: nonEmpty().optional(),
  DEFAULT_TIMEOUT_SECONDS: seconds()
    .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS}`)
    .default(3600),
  MAX_TIMEOUT_SECONDS: seconds()
    .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS}`)
    .default(86400),
  ALLOWED_PERMISSION_MODES: commaList(
    PERMISSION_MODES.filter((mode) => mode !== 'bypassPermissions').join(','),
  ).refine(
    (modes) => modes.every((mode) => (PERMISSION_MODES as readonly string[]).includes(mode)),
    `must be a comma-separated list of ${PERMISSION_MODES.join(', ')}`,
  ),
  RUN_ISOLATION: z
    .enum(['auto', 'required', 'off'], { error: 'must be auto, required or off' })
    .default('auto'),
  RUN_NAMESPACES: z.enum(['auto', 'off'], { error: 'must be auto or off' }).default('auto'),
  RUN_ROOT: nonEmpty()
    .default('/var/lib/claudebox')
    .refine((value) => value.startsWith('/'), 'must be an absolute path'),
  RUN_UID_BASE: integer(1).max(4_000_000_000, 'must be at most 4000000000').default(50000),
  RUN_UID_COUNT: integer(1).max(1_000_000, 'must be at most 1000000').default(1000),
  MAX_OUTPUT_BYTES: integer(1024).default(MiB),
  MAX_PROMPT_BYTES: integer(1).default(4 * MiB),
  MAX_LINE_BYTES: integer(1024).default(8 * MiB),
  SHUTDOWN_GRACE_SECONDS: z.coerce.number({ error: 'must be a number' }).min(0).default(30),
  KILL_GRACE_SECONDS: z.coerce.number({ error: 'must be a number' }).min(0).default(5),
  LOCK_DURATION_SECONDS: seconds().default(30),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HEALTH_PORT: integer(0).max(65535, 'must be at most 65535').default(8080),
  HEALTH_HOST: nonEmpty().default('0.0.0.0'),
  EVENTS_MAX_LEN: integer(100).default(10000),
  EVENTS_TTL_SECONDS: integer(1).default(86400),
  EVENT_BUFFER_BYTES: integer(MiB).default(64 * MiB),
  SESSION_STORE: z.enum(['redis', 'off'], { error: 'must be redis or off' }).default('redis'),
  SESSION_SYNC_SECONDS: seconds().default(0.25),
  SESSION_MAX_BYTES: integer(1024).default(256 * MiB),
  SESSION_TTL_SECONDS: integer(60).default(7 * 86400),
  CLAUDE_ENV: commaList('')
    .refine(
      (names) => names.every((name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)),
      'must be a comma-separated list of variable names',
    )
    .refine(
      (names) => !names.some((name) => WORKER_SECRETS.includes(name)),
      `must not name the worker's own secrets (${WORKER_SECRETS.join(', ')})`,
    ),
});

export type Config = z.output<typeof ConfigSchema>;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment, or throws a ConfigError naming every bad variable and its value. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  // An empty variable means "not set", as in most shells' `VAR= command`.
  const present = Object.fromEntries(
    Object.keys(ConfigSchema.shape)
      .map((key) => [key, env[key]] as const)
      .filter(([, value]) => value !== undefined && value !== ''),
  );
  const parsed = ConfigSchema.safeParse(present);
  if (parsed.success) {
    const config = parsed.data;
    if (config.DEFAULT_TIMEOUT_SECONDS > config.MAX_TIMEOUT_SECONDS) {
      throw new ConfigError(
        `invalid configuration: DEFAULT_TIMEOUT_SECONDS=${config.DEFAULT_TIMEOUT_SECONDS} is over MAX_TIMEOUT_SECONDS=${config.MAX_TIMEOUT_SECONDS}`,
      );
    }
    return config;
  }
  const problems = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0]);
    const value = name === 'REDIS_URL' ? redactUrl(String(present[name])) : present[name];
    return `${name}=${JSON.stringify(value)}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
}

function isRedisUrl(value: string): boolean {
  // Not a URL at all, or another scheme: either way not something ioredis can use.
  try {
    const url = new URL(value);
    return url.protocol === 'redis:' || url.protocol === 'rediss:';
  } catch {
    return false;
  }
}

/** The URL with any password replaced, for logs and error messages. */
export function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return value;
  }
}
