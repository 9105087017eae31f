import { DEFAULT_ALLOWED_TOOLS, type ExecuteRequest } from '../contract/index.js';

/** How a run relates to a Claude session. */
export type SessionPlan =
  /** Start a session with this id (fixed up front so a retry can find it). */
  | { readonly mode: 'new'; readonly sessionId: string }
  /** Continue an existing session. */
  | { readonly mode: 'resume'; readonly sessionId: string }
  /**
   * Continue a copy of session `from` (`--fork-session`), under `sessionId` when it is fixed up
   * front (null: the CLI picks one).
   */
  | { readonly mode: 'fork'; readonly from: string; readonly sessionId: string | null }
  /** Let the CLI pick (portable sessions switched off). */
  | { readonly mode: 'none' };

/**
 * Where a run's MCP servers and settings come from: files the worker wrote into the run's box
 * (their values, secrets among them, never go on argv, which /proc and the started event show),
 * and the setting sources the run may read besides them.
 */
export interface RunConfigArgs {
  readonly mcpConfigFile: string | null;
  readonly settingsFile: string | null;
  readonly settingSources: readonly string[];
}

/** No MCP server, no settings file, no setting source. */
export const NO_RUN_CONFIG: RunConfigArgs = {
  mcpConfigFile: null,
  settingsFile: null,
  settingSources: [],
};

/** What an attempt adds to the request's own flags. */
export interface AttemptArgs {
  /** The profile's files and the setting sources it allows. */
  readonly runConfig?: RunConfigArgs;
  /** This attempt's cap: what is left of the job's maxBudgetUsd. */
  readonly budgetUsd?: number | null;
}

/**
 * The CLI's arguments for a request. The prompt is not among them: it goes on stdin, which has
 * no size cap and cannot be swallowed by a list flag. Values use the `--flag=value` form so a
 * value starting with "-" can never read as a flag of its own.
 */
export function buildArgs(
  request: ExecuteRequest,
  session: SessionPlan,
  attempt: AttemptArgs = {},
): string[] {
  const args = ['-p', '--verbose', '--output-format', 'stream-json'];
  if (session.mode === 'new') args.push(`--session-id=${session.sessionId}`);
  if (session.mode === 'resume') args.push(`--resume=${session.sessionId}`);
  if (session.mode === 'fork') {
    args.push(`--resume=${session.from}`, '--fork-session');
    if (session.sessionId !== null) args.push(`--session-id=${session.sessionId}`);
  }
  const allowed = request.allowedTools ?? DEFAULT_ALLOWED_TOOLS;
  if (allowed.length > 0) args.push(`--allowedTools=${allowed.join(',')}`);
  if (request.disallowedTools && request.disallowedTools.length > 0) {
    args.push(`--disallowedTools=${request.disallowedTools.join(',')}`);
  }
  if (request.model !== undefined) args.push(`--model=${request.model}`);
  if (request.maxTurns !== undefined) args.push(`--max-turns=${request.maxTurns}`);
  if (request.permissionMode !== undefined) {
    args.push(`--permission-mode=${request.permissionMode}`);
  }
  if (request.appendSystemPrompt !== undefined) {
    args.push(`--append-system-prompt=${request.appendSystemPrompt}`);
  }
  if (attempt.budgetUsd !== undefined && attempt.budgetUsd !== null) {
    args.push(`--max-budget-usd=${attempt.budgetUsd}`);
  }
  if (request.jsonSchema !== undefined) {
    args.push(`--json-schema=${JSON.stringify(request.jsonSchema)}`);
  }
  args.push(...moreFlags(request), ...runConfigArgs(attempt.runConfig ?? NO_RUN_CONFIG));
  return args;
}

/**
 * Always strict: the working directory's `.mcp.json` and the user, project and local settings
 * (hooks among them) count only where the profile allows their source.
 */
function runConfigArgs(config: RunConfigArgs): string[] {
  const args = ['--strict-mcp-config', `--setting-sources=${config.settingSources.join(',')}`];
  if (config.mcpConfigFile !== null) args.push(`--mcp-config=${config.mcpConfigFile}`);
  if (config.settingsFile !== null) args.push(`--settings=${config.settingsFile}`);
  return args;
}

/** The model, prompt, tool and streaming flags the CLI takes as they are. */
function moreFlags(request: ExecuteRequest): string[] {
  const args: string[] = [];
  if (request.fallbackModel !== undefined) args.push(`--fallback-model=${request.fallbackModel}`);
  if (request.systemPrompt !== undefined) args.push(`--system-prompt=${request.systemPrompt}`);
  // `--tools=` (nothing after the `=`) is how the CLI takes "no built-in tools at all".
  if (request.tools !== undefined) args.push(`--tools=${request.tools.join(',')}`);
  if (request.effort !== undefined) args.push(`--effort=${request.effort}`);
  // One flag per directory: a list flag would read the next argument as another directory.
  for (const dir of request.addDirs ?? []) args.push(`--add-dir=${dir}`);
  if (request.includePartialMessages === true) args.push('--include-partial-messages');
  return args;
}
