import { z } from 'zod';
import { errorMessage } from '../common/errors.js';
import { holdsMoreThan, isRecord, MAX_JSON_DEPTH, nestsDeeperThan } from '../common/records.js';
import { describeIssues } from './issues.js';
import { compileJsonSchema } from './json-schema.js';

/** The tools a run may use when the request names none (the seed executor's list). */
export const DEFAULT_ALLOWED_TOOLS: readonly string[] = [
  'Bash',
  'Edit',
  'Write',
  'Read',
  'Glob',
  'Grep',
  'Task',
  'WebFetch',
  'WebSearch',
];

export const PERMISSION_MODES = [
  'acceptEdits',
  'auto',
  'bypassPermissions',
  'default',
  'dontAsk',
  'manual',
  'plan',
] as const;

/** The `--effort` levels the pinned CLI knows (it ignores any other with a warning). */
export const EFFORT_LEVELS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;

/** Most directories a job may add with `addDirs`. */
export const MAX_ADD_DIRS = 32;

/** Longest timeout a job may ask for: one week. */
export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;

/**
 * argv carries everything but the prompt, and Linux caps one argument at 128 KiB, so any
 * free-text flag value stays well below that.
 */
export const MAX_FLAG_VALUE_BYTES = 64 * 1024;

/** Longest model name or alias: real ones, Bedrock ARNs among them, are far shorter. */
export const MAX_MODEL_NAME_LENGTH = 256;

/**
 * Longest job id. It is in every event and key of the job and in the run's environment (where
 * Linux caps one variable at 128 KiB): a UUID is 36 characters.
 */
export const MAX_JOB_ID_LENGTH = 256;

/** What is wrong with a job id, or null: one the worker refuses as an invalid request. */
export function jobIdProblem(jobId: string): string | null {
  if (jobId.length > MAX_JOB_ID_LENGTH) {
    return `jobId: is ${jobId.length} characters, over the limit of ${MAX_JOB_ID_LENGTH}`;
  }
  // It goes into the run's environment, where a NUL cannot be, and into logs and headers.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it rejects
  if (/[\u0000-\u001f\u007f]/.test(jobId)) return 'jobId: must not contain control characters';
  return null;
}

// A tool rule as the CLI understands it: a name (`Bash`, `mcp__github__create_issue`) with an
// optional specifier in parentheses (`Bash(git diff:*)`). Nothing that could read as a flag,
// break a comma-joined list or smuggle a control character onto the command line.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it rejects
const TOOL_RULE = /^[A-Za-z][A-Za-z0-9_-]*(\([^()\u0000-\u001f\u007f]*\))?$/;

/** A profile's name, as PROFILES_FILE defines it and a job's `profile` names it. */
export const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const toolRule = z.string({ error: 'must be a tool name (a string)' }).regex(TOOL_RULE, {
  error: (issue) =>
    `${JSON.stringify(issue.input)} is not a tool name such as "Bash" or "Bash(git diff:*)"`,
});

const byteLength = (value: string): number => Buffer.byteLength(value, 'utf8');

/** A list goes on argv as one argument, its items joined by commas, so the whole is capped. */
const fitsOneArgument = (list: readonly string[]): boolean =>
  byteLength(list.join(',')) <= MAX_FLAG_VALUE_BYTES;

const JOINED_TOO_LONG = `must be at most ${MAX_FLAG_VALUE_BYTES} bytes, joined by commas`;

/** Tool rules a list may hold: far past real ones, and a bound on what checking them takes. */
export const MAX_TOOL_RULES = 1024;

const toolRules = () =>
  z
    .array(toolRule, { error: 'must be a list of tool names' })
    .max(MAX_TOOL_RULES, `must name at most ${MAX_TOOL_RULES} tool rules`)
    .refine(fitsOneArgument, JOINED_TOO_LONG)
    .optional();

/** A built-in tool's bare name (`Bash`, `Read`): `--tools` takes no rules and no MCP tools. */
const builtinTool = z
  .string({ error: 'must be a tool name (a string)' })
  .regex(/^[A-Za-z][A-Za-z0-9_]*$/, {
    error: (issue) => `${JSON.stringify(issue.input)} is not a built-in tool name such as "Read"`,
  });

const modelName = () =>
  z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:[\]/@-]*$/, 'must be a model name or alias')
    .max(MAX_MODEL_NAME_LENGTH, `must be at most ${MAX_MODEL_NAME_LENGTH} characters`);

const flagText = () =>
  z
    .string({ error: 'must be a string' })
    .min(1, 'must not be empty')
    .refine((value) => !value.includes('\u0000'), 'must not contain NUL')
    .refine(
      (value) => byteLength(value) <= MAX_FLAG_VALUE_BYTES,
      `must be at most ${MAX_FLAG_VALUE_BYTES} bytes`,
    );

/** How deep a job's jsonSchema may nest: short of what would overflow the schema compiler too. */
const MAX_SCHEMA_DEPTH = MAX_JSON_DEPTH;

/**
 * Values a jsonSchema of MAX_FLAG_VALUE_BYTES can hold at most (each takes 2 bytes or more as
 * JSON): counting them first keeps a schema of millions of keys from taking seconds to check.
 */
const MAX_SCHEMA_VALUES = MAX_FLAG_VALUE_BYTES / 2;

/** An object as JSON.parse makes them: not an array, nor a Date or another class's object. */
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  isRecord(value) && [Object.prototype, null].includes(Object.getPrototypeOf(value) as object);

/** A JSON Schema object for --json-schema: it travels on argv, so it is capped like a flag value. */
const jsonSchema = () =>
  z
    .custom<unknown>((value) => !holdsMoreThan(value, MAX_SCHEMA_VALUES), {
      error: `must be at most ${MAX_FLAG_VALUE_BYTES} bytes as JSON`,
      abort: true,
    })
    // Checked in place, not copied as z.record would: a copy drops an own `__proto__` key.
    .pipe(
      z.custom<Record<string, unknown>>(isPlainObject, { error: 'must be a JSON Schema object' }),
    )
    .refine((value) => !nestsDeeperThan(value, MAX_SCHEMA_DEPTH), {
      error: `must be nested at most ${MAX_SCHEMA_DEPTH} levels deep`,
      abort: true,
    })
    .refine((value) => byteLength(JSON.stringify(value)) <= MAX_FLAG_VALUE_BYTES, {
      error: `must be at most ${MAX_FLAG_VALUE_BYTES} bytes as JSON`,
      // Too big to pass on: not worth compiling.
      abort: true,
    })
    .superRefine((value, context) => {
      const compiled = compileJsonSchema(value);
      if (!compiled.ok) context.addIssue(`is not a valid JSON Schema: ${compiled.reason}`);
    });

/** A git ref a job's workspace starts from: a branch, a tag or a commit, never an option. */
const GIT_REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9._/@^~+-]{1,200}$/;

/**
 * A checkout of its own for the job: `source` (a local path or URL the worker's
 * WORKSPACE_SOURCES allows) at `ref`; the job's change is its result.
 */
export const WorkspaceRequestSchema = z.strictObject({
  source: flagText(),
  ref: z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .regex(GIT_REF, 'must be a branch, tag or commit name'),
  /** Commit the change on a branch named after the job in the worker's cached clone. */
  commit: z.boolean({ error: 'must be true or false' }).optional(),
});

export type WorkspaceRequest = z.infer<typeof WorkspaceRequestSchema>;

/** The job data of an execute job (see CONTRACT_VERSION). */
export const ExecuteRequestSchema = z
  .strictObject({
    prompt: z
      .string({
        error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string'),
      })
      .refine((value) => value.trim().length > 0, 'must not be empty'),
    workingDir: flagText().optional(),
    allowedTools: toolRules(),
    disallowedTools: toolRules(),
    timeout: z
      .number({ error: 'must be a number of seconds' })
      .positive('must be a positive number of seconds')
      .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
      .optional(),
    /** Seconds the run may print nothing before it is stopped as idle. */
    idleTimeout: z
      .number({ error: 'must be a number of seconds' })
      .positive('must be a positive number of seconds')
      .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
      .optional(),
    resumeSessionId: z
      .uuid('must be a UUID')
      // The CLI writes its session ids in lower case, and finds a session by its files' names.
      .regex(/^[^A-F]*$/, 'must be in lower case, as the CLI writes session ids')
      .optional(),
    /**
     * Whose sessions this job may resume and leaves behind: set by the control plane (a tenant,
     * say), never by what a tenant writes. A job finds only sessions of its own scope.
     */
    sessionScope: z
      .string({ error: 'must be a string' })
      .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 letters, digits, . _ : or -')
      .optional(),
    model: modelName().optional(),
    /** Tried, in order, when the model is busy or unavailable (`--fallback-model`). */
    fallbackModel: modelName().optional(),
    maxTurns: z.int('must be an integer').positive('must be positive').optional(),
    appendSystemPrompt: flagText().optional(),
    permissionMode: z
      .enum(PERMISSION_MODES, { error: `must be one of ${PERMISSION_MODES.join(', ')}` })
      .optional(),
    /** Replaces the CLI's system prompt (`appendSystemPrompt` is then added to this one). */
    systemPrompt: flagText().optional(),
    /** The built-in tools that exist at all in the run (`--tools`); `[]`: none. */
    tools: z
      .array(builtinTool, { error: 'must be a list of built-in tool names' })
      .max(64, 'must name at most 64 tools')
      .refine(fitsOneArgument, JOINED_TOO_LONG)
      .optional(),
    effort: z
      .enum(EFFORT_LEVELS, { error: `must be one of ${EFFORT_LEVELS.join(', ')}` })
      .optional(),
    /** More directories the run may work in (`--add-dir`), relative to WORK_DIR. */
    addDirs: z
      .array(flagText(), { error: 'must be a list of directories' })
      .min(1, 'must name at least one directory')
      .max(MAX_ADD_DIRS, `must name at most ${MAX_ADD_DIRS} directories`)
      .optional(),
    includePartialMessages: z.boolean({ error: 'must be true or false' }).optional(),
    /** With resumeSessionId: continue a copy of that session, leaving the original as it is. */
    forkSession: z.boolean({ error: 'must be true or false' }).optional(),
    /** A named profile of the worker (MCP servers, settings); its secrets never travel here. */
    profile: z
      .string({ error: 'must be a string' })
      .regex(PROFILE_NAME, 'must be a profile name: 1 to 64 letters, digits, . _ or -')
      .optional(),
    /** Dollars for the whole job, across all its attempts: each attempt may spend what is left. */
    maxBudgetUsd: z
      .number({ error: 'must be a positive number of dollars' })
      // No attempt starts with less than a cent left: a smaller budget could never run.
      .min(0.01, 'must be at least 0.01 dollars')
      .optional(),
    /** The answer must be JSON valid against this schema (`--json-schema`). */
    jsonSchema: jsonSchema().optional(),
    /** A git checkout of the job's own to work in, instead of workingDir. */
    workspace: WorkspaceRequestSchema.optional(),
  })
  .refine((request) => request.workspace === undefined || request.workingDir === undefined, {
    path: ['workspace'],
    error: 'cannot go with workingDir: a job works in its workspace or in workingDir',
  })
  .refine((request) => request.forkSession !== true || request.resumeSessionId !== undefined, {
    path: ['forkSession'],
    error: 'needs resumeSessionId: only a resumed session can be forked',
  });

export type ExecuteRequest = z.infer<typeof ExecuteRequestSchema>;

export type ParsedRequest =
  | { readonly ok: true; readonly request: ExecuteRequest }
  | { readonly ok: false; readonly reason: string };

/** Validates job data, naming every bad field in one line when it is not a valid request. */
export function parseExecuteRequest(data: unknown): ParsedRequest {
  let parsed;
  try {
    parsed = ExecuteRequestSchema.safeParse(data, { reportInput: true });
  } catch (error) {
    // A check that threw on data of a shape none foresaw: the data is still what is wrong.
    return { ok: false, reason: `the job data could not be checked: ${errorMessage(error)}` };
  }
  return parsed.success
    ? { ok: true, request: parsed.data }
    : { ok: false, reason: describeIssues(parsed.error) };
}
