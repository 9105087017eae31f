import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { PROFILE_NAME } from '../contract/index.js';
import { errorMessage } from '../common/errors.js';
import { ConfigError, WORKER_SECRETS } from './config.js';
import { fillSecrets, secretProblems, type Filled } from './profile-values.js';
import { isRecord } from '../common/records.js';

/** The CLI's `--setting-sources` values: where it may read settings besides `--settings`. */
export const SETTING_SOURCES = ['user', 'project', 'local'] as const;
export type SettingSource = (typeof SETTING_SOURCES)[number];

/**
 * Settings that make the CLI run commands of its own, outside the tool permissions a job is
 * given: refused unless the profile says `allowHooks: true`.
 */
export const COMMAND_SETTINGS = [
  'hooks',
  'apiKeyHelper',
  'awsAuthRefresh',
  'awsCredentialExport',
  'otelHeadersHelper',
  'statusLine',
] as const;

// Servers become tool names `mcp__<server>__<tool>`; `__` inside would make them ambiguous.
const SERVER_NAME = /^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$/;

/** A string that may hold `${env:NAME}` references, each checked where it is written. */
const value = () =>
  z.string({ error: 'must be a string' }).superRefine((text, context) => {
    for (const message of secretProblems(text, WORKER_SECRETS)) {
      context.addIssue({ code: 'custom', message });
    }
  });

const stringMap = () => z.record(z.string(), value(), { error: 'must be an object of strings' });

const stdioServer = z.strictObject({
  type: z.literal('stdio'),
  command: value().refine((text) => text.trim() !== '', 'must not be empty'),
  args: z.array(value(), { error: 'must be a list of strings' }).optional(),
  env: stringMap().optional(),
});

const remoteServer = (type: 'http' | 'sse') =>
  z.strictObject({
    type: z.literal(type),
    url: value().regex(/^https?:\/\//, 'must be an http:// or https:// URL'),
    headers: stringMap().optional(),
  });

/** The CLI's `mcpServers` entry: stdio (the default type), http or sse. */
const mcpServer = z.preprocess(
  (entry) => (isRecord(entry) && entry.type === undefined ? { ...entry, type: 'stdio' } : entry),
  z.discriminatedUnion('type', [stdioServer, remoteServer('http'), remoteServer('sse')], {
    error: (issue) =>
      isRecord(issue.input)
        ? 'must be stdio (the default), http or sse'
        : 'must be an MCP server object',
  }),
);

const ProfileSchema = z
  .strictObject({
    description: z.string({ error: 'must be a string' }).optional(),
    mcpServers: z
      .record(z.string().regex(SERVER_NAME), mcpServer, {
        error: (issue) =>
          issue.code === 'invalid_key'
            ? 'a server name is letters, digits, - and single _'
            : 'must be an object of MCP servers by name',
      })
      .optional(),
    settings: z
      .record(z.string(), z.json(), { error: 'must be a JSON object of CLI settings' })
      .superRefine(checkSettingValues)
      .optional(),
    settingSources: z
      .array(z.enum(SETTING_SOURCES, { error: `must be one of ${SETTING_SOURCES.join(', ')}` }), {
        error: `must be a list of ${SETTING_SOURCES.join(', ')}`,
      })
      .refine((list) => new Set(list).size === list.length, 'must not name a source twice')
      .optional(),
    allowHooks: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .superRefine((profile, context) => {
    if (profile.allowHooks === true || profile.settings === undefined) return;
    for (const key of COMMAND_SETTINGS) {
      if (key in profile.settings) {
        context.addIssue({
          code: 'custom',
          path: ['settings', key],
          message:
            'makes the CLI run commands outside the tool permissions; set "allowHooks": true in the profile to allow it',
        });
      }
    }
  });

export type Profile = z.output<typeof ProfileSchema>;

const ProfilesFileSchema = z.strictObject(
  {
    profiles: z.record(z.string().regex(PROFILE_NAME), ProfileSchema, {
      error: (issue) =>
        issue.code === 'invalid_key'
          ? 'a profile name is 1 to 64 letters, digits, . _ or -'
          : 'must be an object of profiles by name',
    }),
  },
  { error: 'must be a JSON object with "profiles"' },
);

/** The profiles of a worker by name; empty when PROFILES_FILE is not set. */
export type Profiles = ReadonlyMap<string, Profile>;

/** Every string inside settings may hold `${env:NAME}` references too. */
function checkSettingValues(settings: Record<string, unknown>, context: z.RefinementCtx): void {
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (typeof node === 'string') {
      for (const message of secretProblems(node, WORKER_SECRETS)) {
        context.addIssue({ code: 'custom', message, path });
      }
    } else if (Array.isArray(node)) {
      node.forEach((item, index) => walk(item, [...path, index]));
    } else if (isRecord(node)) {
      for (const [key, item] of Object.entries(node)) walk(item, [...path, key]);
    }
  };
  walk(settings, []);
}

/**
 * Reads and checks PROFILES_FILE, or throws a ConfigError naming the file, the profile and the
 * field. The file holds no secrets, only `${env:NAME}` references to the worker's environment.
 */
export async function loadProfiles(path: string | undefined): Promise<Profiles> {
  if (path === undefined) return new Map();
  const where = `PROFILES_FILE=${path}`;
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`invalid configuration: ${where}: ${errorMessage(error)}`);
  }
  const parsed = ProfilesFileSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap(describeProfileIssue);
    throw new ConfigError(`invalid configuration: ${where}: ${problems.join('; ')}`);
  }
  return new Map(Object.entries(parsed.data.profiles));
}

/** `profile "github": mcpServers.gh.url: must be an http:// or https:// URL`. */
function describeProfileIssue(issue: z.core.$ZodIssue): string[] {
  const [top, name, ...rest] = issue.path.map(String);
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
  return keys.map((key) => {
    const field = [...rest, ...(key === undefined ? [] : [key])].join('.');
    const message = key === undefined ? issue.message : 'unknown field';
    if (top !== 'profiles' || name === undefined) {
      return `${[top, key].filter(Boolean).join('.') || 'the file'}: ${message}`;
    }
    return `profile ${JSON.stringify(name)}: ${field ? `${field}: ` : ''}${message}`;
  });
}

export { SECRET_SYNTAX, referencedVariables } from './profile-values.js';

/** What a run gets of its profile: file contents, secrets filled in, and its setting sources. */
export interface ProfileFiles {
  /** The `--mcp-config` file's JSON, or null when the profile names no MCP server. */
  readonly mcpConfig: string | null;
  /** The `--settings` file's JSON, or null when the profile has no settings. */
  readonly settings: string | null;
  readonly settingSources: readonly SettingSource[];
}

/** No profile: no MCP server and no settings from anywhere but the CLI's defaults. */
export const NO_PROFILE: ProfileFiles = { mcpConfig: null, settings: null, settingSources: [] };

/** A profile's files with the worker's environment filled in (or the variables it lacks). */
export function profileFiles(
  profile: Profile,
  env: Readonly<Record<string, string | undefined>>,
): Filled<ProfileFiles> {
  const filled = fillSecrets(
    { mcpServers: profile.mcpServers ?? null, settings: profile.settings ?? null },
    env,
  );
  if (!filled.ok) return filled;
  const { mcpServers, settings } = filled.value;
  return {
    ok: true,
    value: {
      mcpConfig: mcpServers === null ? null : JSON.stringify({ mcpServers }),
      settings: settings === null ? null : JSON.stringify(settings),
      settingSources: profile.settingSources ?? [],
    },
  };
}
