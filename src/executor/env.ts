/**
 * The CLI sees an allow-listed environment, not the worker's: the worker's own secrets (a
 * REDIS_URL password, say) must not reach the model's tools, which inherit the CLI's environment.
 */
const EXACT = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  'IS_SANDBOX',
  'CLAUDE_CONFIG_DIR',
  'DISABLE_TELEMETRY',
  'DISABLE_ERROR_REPORTING',
  'DISABLE_AUTOUPDATER',
  'DISABLE_BUG_COMMAND',
  'DISABLE_COST_WARNINGS',
  'DISABLE_NON_ESSENTIAL_MODEL_CALLS',
  'MAX_THINKING_TOKENS',
  'BASH_DEFAULT_TIMEOUT_MS',
  'BASH_MAX_TIMEOUT_MS',
  'BASH_MAX_OUTPUT_LENGTH',
  'MCP_TIMEOUT',
  'MCP_TOOL_TIMEOUT',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  // Amazon Bedrock and Google Vertex AI credentials, for CLAUDE_CODE_USE_BEDROCK / _VERTEX.
  'AWS_REGION',
  'AWS_PROFILE',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_BEARER_TOKEN_BEDROCK',
  'CLOUD_ML_REGION',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'GOOGLE_CLOUD_PROJECT',
]);

const PREFIXES = ['ANTHROPIC_', 'CLAUDE_CODE_', 'LC_', 'VERTEX_REGION_'];

/** The names the worker sets itself on every run, so /proc can tell a run's processes. */
export const RUN_MARKER = 'CLAUDEBOX_RUN_ID';
export const WORKER_MARKER = 'CLAUDEBOX_WORKER_ID';
export const JOB_VARIABLE = 'CLAUDEBOX_JOB_ID';

export interface RunIdentity {
  readonly workerId: string;
  readonly runId: string;
  readonly jobId: string;
}

/** The environment a run gets: allow-listed variables, the operator's extras, and run markers. */
export function buildChildEnv(
  source: Readonly<Record<string, string | undefined>>,
  extraNames: readonly string[],
  identity: RunIdentity,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (EXACT.has(name) || extraNames.includes(name) || PREFIXES.some((p) => name.startsWith(p))) {
      env[name] = value;
    }
  }
  env[WORKER_MARKER] = identity.workerId;
  env[RUN_MARKER] = identity.runId;
  env[JOB_VARIABLE] = identity.jobId;
  return env;
}
