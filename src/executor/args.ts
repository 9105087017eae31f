import { DEFAULT_ALLOWED_TOOLS, type ExecuteRequest } from '../contract/index.js';

/** How a run relates to a Claude session. */
export type SessionPlan =
  /** Start a session with this id (fixed up front so a retry can find it). */
  | { readonly mode: 'new'; readonly sessionId: string }
  /** Continue an existing session. */
  | { readonly mode: 'resume'; readonly sessionId: string }
  /** Let the CLI pick (portable sessions switched off). */
  | { readonly mode: 'none' };

/**
 * The CLI's arguments for a request. The prompt is not among them: it goes on stdin, which has
 * no size cap and cannot be swallowed by a list flag. Values use the `--flag=value` form so a
 * value starting with "-" can never read as a flag of its own. `budgetUsd` is this attempt's
 * cap: what is left of the job's maxBudgetUsd, which covers all its attempts.
 */
export function buildArgs(
  request: ExecuteRequest,
  session: SessionPlan,
  budgetUsd: number | null = null,
): string[] {
  const args = ['-p', '--verbose', '--output-format', 'stream-json'];
  if (session.mode === 'new') args.push(`--session-id=${session.sessionId}`);
  if (session.mode === 'resume') args.push(`--resume=${session.sessionId}`);
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
  if (budgetUsd !== null) args.push(`--max-budget-usd=${budgetUsd}`);
  if (request.jsonSchema !== undefined) {
    args.push(`--json-schema=${JSON.stringify(request.jsonSchema)}`);
  }
  return args;
}
