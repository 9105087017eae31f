import { isUtf8 } from 'node:buffer';
import type { JobsOptions } from 'bullmq';
import { ClaudeboxError } from '../client/index.js';
import { ExecuteRequestSchema, type ExecuteRequest } from '../contract/index.js';
import { connect } from './connect.js';
import { CliError, EXIT } from './exit-codes.js';
import { followJob } from './follow.js';
import { choosePolicy, Interrupts, type InterruptPolicy } from './interrupt.js';
import { isInteractive, type CliIo } from './io.js';
import { parseCount, parseInteger, parseJsonOption, parseList, parseNumber } from './options.js';

/** `claudebox run` options as commander hands them over: strings, checked here. */
export interface RunOptions {
  readonly cwd?: string;
  readonly tools?: string;
  readonly disallowedTools?: string;
  readonly timeout?: string;
  readonly idleTimeout?: string;
  readonly resume?: string;
  readonly sessionScope?: string;
  readonly model?: string;
  readonly maxTurns?: string;
  readonly permissionMode?: string;
  readonly appendSystemPrompt?: string;
  readonly profile?: string;
  readonly maxBudgetUsd?: string;
  /** Inline JSON, or the path of a file holding it. */
  readonly jsonSchema?: string;
  readonly fallbackModel?: string;
  readonly systemPrompt?: string;
  readonly builtinTools?: string;
  readonly effort?: string;
  readonly addDir?: readonly string[];
  readonly includePartialMessages?: boolean;
  readonly forkSession?: boolean;
  readonly workspaceSource?: string;
  readonly workspaceRef?: string;
  readonly workspaceCommit?: boolean;
  readonly attempts?: string;
  readonly follow?: boolean;
  readonly json?: boolean;
  readonly onInterrupt?: InterruptPolicy;
}

/** The option each request field comes from, so a rejection names what the user typed. */
const OPTION_OF_FIELD: Record<keyof ExecuteRequest, string> = {
  prompt: 'prompt',
  workingDir: '--cwd',
  workspace: '--workspace-source/--workspace-ref',
  allowedTools: '--tools',
  disallowedTools: '--disallowed-tools',
  timeout: '--timeout',
  idleTimeout: '--idle-timeout',
  resumeSessionId: '--resume',
  sessionScope: '--session-scope',
  model: '--model',
  maxTurns: '--max-turns',
  appendSystemPrompt: '--append-system-prompt',
  permissionMode: '--permission-mode',
  profile: '--profile',
  maxBudgetUsd: '--max-budget-usd',
  jsonSchema: '--json-schema',
  fallbackModel: '--fallback-model',
  systemPrompt: '--system-prompt',
  tools: '--builtin-tools',
  effort: '--effort',
  addDirs: '--add-dir',
  includePartialMessages: '--include-partial-messages',
  forkSession: '--fork-session',
};

/**
 * `claudebox run <prompt>`: enqueues an execute job; prints its id, or with --follow its events
 * until the run ends (exit code 0 when it completed, 1 when it failed).
 */
export async function runRunCommand(
  promptArg: string,
  options: RunOptions,
  io: CliIo,
): Promise<number> {
  const draft = requestFromOptions(options, io.cwd);
  const attempts =
    options.attempts === undefined ? undefined : parseCount('--attempts', options.attempts, 1);
  if (options.json === true && options.follow !== true) {
    throw new CliError(EXIT.usage, '--json goes with --follow');
  }
  // Ctrl-C stops only the following: without it there is nothing to interrupt.
  if (options.onInterrupt !== undefined && options.follow !== true) {
    throw new CliError(EXIT.usage, '--on-interrupt goes with --follow');
  }
  const prompt = promptArg === '-' ? await readPrompt(io) : promptArg;
  const request = validate({ prompt, ...draft });

  const connection = await connect(io);
  // Watching from before the job exists: a Ctrl-C during the enqueue must not orphan it either.
  const interrupts = options.follow === true ? new Interrupts(io) : null;
  try {
    const jobOptions: JobsOptions = attempts === undefined ? {} : { attempts };
    let jobId: string;
    try {
      jobId = await connection.client.enqueue(request, jobOptions);
    } catch (error) {
      // The same schema was checked above; this covers a client that knows more than we do.
      if (error instanceof ClaudeboxError && error.code === 'invalid-request') {
        throw new CliError(EXIT.usage, error.message);
      }
      throw error;
    }
    if (interrupts === null) {
      io.stdout(`${jobId}\n`);
      return EXIT.ok;
    }
    if (options.json !== true) io.stdout(`· job ${jobId} queued\n`);
    return await followJob({
      client: connection.client,
      jobId,
      fromSeq: 1,
      json: options.json === true,
      io,
      interrupts,
      policy: choosePolicy(options.onInterrupt, isInteractive(io), 'cancel'),
      withoutTerminal: 'cancel',
    });
  } finally {
    interrupts?.dispose();
    await connection.close();
  }
}

function requestFromOptions(options: RunOptions, cwd: string): Omit<ExecuteRequest, 'prompt'> {
  return {
    ...(options.cwd !== undefined && { workingDir: options.cwd }),
    ...(options.tools !== undefined && { allowedTools: parseList(options.tools) }),
    ...(options.disallowedTools !== undefined && {
      disallowedTools: parseList(options.disallowedTools),
    }),
    ...(options.timeout !== undefined && {
      timeout: parseNumber('--timeout', options.timeout, 'a number of seconds'),
    }),
    ...(options.idleTimeout !== undefined && {
      idleTimeout: parseNumber('--idle-timeout', options.idleTimeout, 'a number of seconds'),
    }),
    ...(options.resume !== undefined && { resumeSessionId: options.resume }),
    ...(options.sessionScope !== undefined && { sessionScope: options.sessionScope }),
    ...(options.model !== undefined && { model: options.model }),
    ...(options.maxTurns !== undefined && {
      maxTurns: parseInteger('--max-turns', options.maxTurns),
    }),
    ...(options.permissionMode !== undefined && {
      permissionMode: options.permissionMode as ExecuteRequest['permissionMode'],
    }),
    ...(options.appendSystemPrompt !== undefined && {
      appendSystemPrompt: options.appendSystemPrompt,
    }),
    ...laterOptions(options),
    ...jobControlOptions(options, cwd),
  };
}

/** Options of the fields that bound what a job may do and spend, and how it must answer. */
function jobControlOptions(options: RunOptions, cwd: string): Partial<ExecuteRequest> {
  return {
    ...(options.profile !== undefined && { profile: options.profile }),
    ...(options.maxBudgetUsd !== undefined && {
      maxBudgetUsd: parseNumber('--max-budget-usd', options.maxBudgetUsd, 'a number of dollars'),
    }),
    ...(options.jsonSchema !== undefined && {
      jsonSchema: parseJsonOption('--json-schema', options.jsonSchema, cwd) as Record<
        string,
        unknown
      >,
    }),
  };
}

/** Options of the model, prompt, tool and session flags the CLI takes as they are. */
function laterOptions(options: RunOptions): Partial<ExecuteRequest> {
  return {
    ...(options.fallbackModel !== undefined && { fallbackModel: options.fallbackModel }),
    ...(options.systemPrompt !== undefined && { systemPrompt: options.systemPrompt }),
    // `--builtin-tools ""` is a list of none: every built-in tool gone.
    ...(options.builtinTools !== undefined && { tools: parseList(options.builtinTools) }),
    ...(options.effort !== undefined && { effort: options.effort as ExecuteRequest['effort'] }),
    ...(options.addDir !== undefined && { addDirs: [...options.addDir] }),
    ...(options.includePartialMessages === true && { includePartialMessages: true }),
    ...(options.forkSession === true && { forkSession: true }),
    ...workspaceOptions(options),
  };
}

/** `--workspace-source` and `--workspace-ref` go together; `--workspace-commit` needs them. */
function workspaceOptions(options: RunOptions): Partial<ExecuteRequest> {
  const { workspaceSource: source, workspaceRef: ref, workspaceCommit: commit } = options;
  if (source === undefined && ref === undefined && commit !== true) return {};
  if (source === undefined || ref === undefined) {
    throw new CliError(
      EXIT.usage,
      '--workspace-source and --workspace-ref go together (--workspace-commit with them)',
    );
  }
  return { workspace: { source, ref, ...(commit === true && { commit: true }) } };
}

/**
 * The contract's own schema, checked before Redis is even contacted, with each problem named
 * by the option it came from.
 */
function validate(request: ExecuteRequest): ExecuteRequest {
  const parsed = ExecuteRequestSchema.safeParse(request, { reportInput: true });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = issue.path[0];
    const option =
      typeof field === 'string' && field in OPTION_OF_FIELD
        ? OPTION_OF_FIELD[field as keyof ExecuteRequest]
        : String(field ?? 'request');
    // A message that names another field (forkSession's needs resumeSessionId) names its option.
    const message = issue.message.replace(/\b[a-z]+[A-Z]\w*\b/g, (word) =>
      word in OPTION_OF_FIELD ? OPTION_OF_FIELD[word as keyof ExecuteRequest] : word,
    );
    return `${option}: ${message}`;
  });
  throw new CliError(EXIT.usage, `invalid request: ${problems.join('; ')}`);
}

async function readPrompt(io: CliIo): Promise<string> {
  if (io.isTTY.stdin) io.stderr('claudebox: reading the prompt from stdin; end it with Ctrl-D\n');
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  }
  const bytes = Buffer.concat(chunks);
  // Decoded leniently, bytes that are not UTF-8 would become U+FFFD: a prompt other than the one
  // given, sent without a word.
  if (!isUtf8(bytes)) throw new CliError(EXIT.usage, 'the prompt on stdin is not UTF-8 text');
  return bytes.toString('utf8');
}
