import { isRecord, nestsDeeperThan } from '../common/records.js';
import { headAndTail } from './output-capture.js';

/** The parts of the CLI's `result` line that make up an ExecuteResult. */
export interface ResultLine {
  readonly subtype: string | null;
  readonly isError: boolean;
  /** Its `result` text, head and tail kept within the answer's cap (see ResultCaps). */
  readonly result: string | null;
  readonly resultTruncated: boolean;
  readonly errors: readonly string[];
  readonly numTurns: number | null;
  readonly costUsd: number | null;
  readonly usage: Record<string, unknown> | null;
  /** Its first entries, whole, within DETAIL_BYTES as JSON; the rest counted only. */
  readonly permissionDenials: readonly unknown[];
  readonly permissionDenialsOmitted: number;
  readonly apiErrorStatus: number | null;
  /** `structured_output`: the answer to --json-schema; null when absent or over the cap. */
  readonly structuredOutput: unknown;
  /** The size, as JSON, of a `structured_output` over the answer's cap, which was not kept. */
  readonly structuredOutputDroppedBytes: number | null;
  /**
   * The cost of the session since its previous result line (`model_usage_since_last_result`,
   * summed over models), null when the CLI did not say; on --resume, unlike total_cost_usd,
   * it leaves out what earlier processes spent up to their result lines.
   */
  readonly costSinceLastResultUsd: number | null;
}

/** A `system`/`api_retry` line: the CLI is about to retry an API call within the run. */
export interface ApiRetryLine {
  /** The HTTP status that failed (`error_status`), null when there was none (a network error). */
  readonly status: number | null;
  /**
   * How long the CLI waits before it retries (`retry_delay_ms`): the API's retry-after, when it
   * gave one of at most 60 s, with up to a quarter added.
   */
  readonly delayMs: number | null;
}

const EXCERPT_CHARS = 200;

/**
 * The result line goes into the job's result, which is stored on the job, in its run state, in
 * BullMQ's event stream and in the terminal event: what of it is kept is capped, so that a line
 * of MAX_LINE_BYTES (a tool can print one before the CLI's) costs no more than the caps. The
 * text and the structured answer get `answerBytes` each (MAX_OUTPUT_BYTES); `usage` and the
 * permission denials, which the CLI keeps small, DETAIL_BYTES each.
 */
export interface ResultCaps {
  readonly answerBytes: number;
}

/** See ResultCaps: a real `usage` is a few hundred bytes, a denial about as much as its input. */
export const DETAIL_BYTES = 16 * 1024;

/**
 * Lines of these types carry nothing the summary reads once it knows the session: they are most
 * of what a run prints, and the longest, so they are known by their first bytes, not parsed.
 */
const UNREAD_TYPES = ['{"type":"assistant"', '{"type":"stream_event"'];

/**
 * Reads the stream-json lines as they pass: the session id (every line carries it), the
 * `result` line, and anything that was not JSON, for an error message that says what happened.
 * The CLI prints one result line, at its end; only the first counts, so nothing printed after it
 * (by a tool that kept a copy of the CLI's stdout, say) can rewrite the result.
 */
export class StreamSummary {
  constructor(private readonly caps: ResultCaps = { answerBytes: Infinity }) {}

  sessionId: string | null = null;
  resultLine: ResultLine | null = null;
  lines = 0;
  nonJsonLines = 0;
  firstNonJson: string | null = null;
  invalidUtf8Lines = 0;
  /** Lines past MAX_LINE_BYTES, which came in pieces and were not read. */
  overlongLines = 0;
  /** The latest `api_retry` line, which tells the API's latest retry-after where there is one. */
  lastApiRetry: ApiRetryLine | null = null;
  /** `user` lines that carry a tool's result: each says a tool finished its work. */
  toolResults = 0;

  /** A whole stdout line (`text` is base64 when it was not valid UTF-8). */
  observe(text: string, encoding: 'base64' | undefined): void {
    this.lines++;
    if (encoding === 'base64') {
      this.invalidUtf8Lines++;
      return;
    }
    if (this.sessionId !== null && UNREAD_TYPES.some((prefix) => text.startsWith(prefix))) return;
    const value = parseObject(text);
    if (value === undefined) {
      this.nonJsonLines++;
      this.firstNonJson ??= text.slice(0, EXCERPT_CHARS);
      return;
    }
    if (this.sessionId === null && typeof value.session_id === 'string' && value.session_id) {
      this.sessionId = value.session_id;
    }
    if (value.type === 'result') this.resultLine ??= toResultLine(value, this.caps);
    if (value.type === 'user' && carriesToolResult(value.message)) this.toolResults++;
    if (value.type === 'system' && value.subtype === 'api_retry' && this.resultLine === null) {
      this.lastApiRetry = {
        status: integerOrNull(value.error_status),
        delayMs: retryDelay(value.retry_delay_ms),
      };
    }
  }

  /** A piece of a line too long to read whole (past MAX_LINE_BYTES); `last`: its last piece. */
  observePartial(last = false): void {
    this.lines++;
    if (last) this.overlongLines++;
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function carriesToolResult(message: unknown): boolean {
  if (!isRecord(message) || !Array.isArray(message.content)) return false;
  return message.content.some((block) => isRecord(block) && block.type === 'tool_result');
}

function toResultLine(line: Record<string, unknown>, caps: ResultCaps): ResultLine {
  const text = stringOrNull(line.result);
  const kept = text === null ? null : headAndTail(text, caps.answerBytes);
  const denials =
    Array.isArray(line.permission_denials) && writable(line.permission_denials)
      ? firstWithin(line.permission_denials, DETAIL_BYTES)
      : [];
  const answer = writable(line.structured_output) ? (line.structured_output ?? null) : null;
  const answerBytes = jsonBytes(answer);
  const answerKept = answerBytes <= caps.answerBytes;
  return {
    subtype: stringOrNull(line.subtype),
    // A result line without a boolean is_error is not a success we can vouch for.
    isError: line.is_error !== false,
    result: kept?.text ?? null,
    resultTruncated: kept?.truncated ?? false,
    errors: Array.isArray(line.errors) ? line.errors.map(errorText) : [],
    numTurns: integerOrNull(line.num_turns),
    costUsd: typeof line.total_cost_usd === 'number' ? line.total_cost_usd : null,
    usage:
      isRecord(line.usage) && writable(line.usage) && jsonBytes(line.usage) <= DETAIL_BYTES
        ? line.usage
        : null,
    permissionDenials: denials,
    permissionDenialsOmitted: Array.isArray(line.permission_denials)
      ? line.permission_denials.length - denials.length
      : 0,
    apiErrorStatus: integerOrNull(line.api_error_status),
    structuredOutput: answerKept ? answer : null,
    structuredOutputDroppedBytes: answerKept ? null : answerBytes,
    costSinceLastResultUsd: sumOfCosts(line.model_usage_since_last_result),
  };
}

/** Bytes of `value` as JSON (of a value `writable` let through: stringify cannot overflow). */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value ?? null));
}

/** The first entries of `list` whose JSON, together, is within `maxBytes`. */
function firstWithin(list: readonly unknown[], maxBytes: number): unknown[] {
  const kept: unknown[] = [];
  let bytes = 2;
  for (const entry of list) {
    bytes += jsonBytes(entry) + 1;
    if (bytes > maxBytes) break;
    kept.push(entry);
  }
  return kept;
}

/**
 * An entry of the result line's `errors` as text. Never String() on what the line holds: an
 * object with a `toString` that is no function makes it throw; and JSON.stringify overflows the
 * stack on an entry nested thousands deep, which JSON.parse read (a tool can print such a line).
 */
function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return '(an error entry too deeply nested to show)';
  }
}

/** The longest wait an api_retry line is taken at: a timer past 2^31 - 1 ms would fire at once. */
const MAX_RETRY_DELAY_MS = 24 * 3600 * 1000;

function retryDelay(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return null;
  return Math.min(value, MAX_RETRY_DELAY_MS);
}

/** The sum of the `costUSD` of each model in a usage-by-model record, or null. */
function sumOfCosts(byModel: unknown): number | null {
  if (!isRecord(byModel)) return null;
  const costs = Object.values(byModel).map((usage) =>
    isRecord(usage) && typeof usage.costUSD === 'number' ? usage.costUSD : null,
  );
  // {} is what the CLI prints when no model call was made since: nothing spent.
  if (costs.includes(null)) return null;
  return (costs as number[]).reduce((sum, cost) => sum + cost, 0);
}

const stringOrNull = (value: unknown): string | null => (typeof value === 'string' ? value : null);
/** A count or a status: what the result's schema takes as a whole number, never below 0. */
const integerOrNull = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;

/**
 * Whether what the result line holds can go into the job's result and terminal event: JSON.parse
 * reads a value nested thousands deep (a tool can print such a line), which JSON.stringify, on
 * the way to Redis, cannot write.
 */
const writable = (value: unknown): boolean => !nestsDeeperThan(value);
