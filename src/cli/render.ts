import type { ExecuteEvent, ExecuteResult, GapEvent, StartedEvent } from '../contract/index.js';
import { flattenLines } from '../common/text.js';

/**
 * A job's events as a person wants to read them: what the model said and did, what its tools
 * answered, how the run ended. Pure (one event in, zero or more lines out) so the output is the
 * same live, in a replay, and in a test.
 */

export interface RenderOptions {
  /** ANSI colors; the text is the same without them. */
  readonly color?: boolean;
}

const TOOL_RESULT_MAX_LINES = 5;
const TOOL_RESULT_MAX_CHARS = 300;
const TOOL_INPUT_MAX_CHARS = 200;
const RAW_LINE_MAX_CHARS = 1000;

/** The input field that says most about a tool call, in order of preference. */
const TELLING_INPUT_FIELDS = [
  'command',
  'file_path',
  'notebook_path',
  'pattern',
  'url',
  'query',
  'path',
  'description',
  'prompt',
  'skill',
];

type Paint = (text: string) => string;
interface Palette {
  readonly bold: Paint;
  readonly dim: Paint;
  readonly red: Paint;
  readonly green: Paint;
  readonly yellow: Paint;
  readonly cyan: Paint;
}

const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\u001b[${open}m${text}\u001b[${close}m`;
const ANSI: Palette = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};
const same: Paint = (text) => text;
const PLAIN: Palette = { bold: same, dim: same, red: same, green: same, yellow: same, cyan: same };

export function renderEvent(event: ExecuteEvent, options: RenderOptions = {}): string[] {
  const paint = options.color === true ? ANSI : PLAIN;
  switch (event.type) {
    case 'started': {
      const lines = [paint.bold(describeStart(event))];
      // Worth a look only when something is not as it should be.
      const { isolation, sessionNote } = event.data;
      if (isolation?.mode === 'off') {
        lines.push(paint.yellow(`! not isolated: ${sanitize(isolation.reason ?? 'off')}`));
      }
      if (sessionNote !== undefined) lines.push(paint.yellow(`! ${sanitize(sessionNote)}`));
      return lines;
    }
    case 'output':
      return renderStdoutLine(event.content, event.data, paint);
    case 'error':
      return [paint.yellow(`stderr: ${rawLine(event.content, event.data)}`)];
    case 'gap':
      return [paint.yellow(describeGap(event))];
    case 'completed':
      return [
        paint.green(`✓ completed in ${formatDuration(event.data.durationMs)}${cost(event.data)}`),
      ];
    case 'failed': {
      const lines = [
        paint.red(`✗ failed: ${sanitize(flattenLines(event.data.error ?? 'no reason given'))}`),
      ];
      const when =
        event.data.retryAt === null ? '' : ` at ${event.data.retryAt} (the API asked to wait)`;
      if (event.data.retrying) lines.push(paint.dim(`↻ another attempt follows${when}`));
      return lines;
    }
  }
}

function describeStart(event: StartedEvent): string {
  const { pid, sessionId, resumed, prompt } = event.data;
  const details = [`pid ${pid}`];
  if (sessionId !== null) details.push(`session ${sessionId.slice(0, 8)}…`);
  if (resumed) details.push(prompt === 'continue' ? 'resumed to continue' : 'resumed');
  return `▶ job ${event.jobId} attempt ${event.attempt} started (${details.join(', ')})`;
}

function describeGap(event: GapEvent): string {
  const { count, ranges, reason } = event.data;
  const seqs = ranges.map(({ from, to }) => (from === to ? `${from}` : `${from}-${to}`)).join(', ');
  return `! ${count} ${count === 1 ? 'event' : 'events'} lost (seq ${seqs}): ${reason}`;
}

function cost(result: ExecuteResult): string {
  return result.costUsd === null ? '' : ` (${formatCost(result.costUsd)})`;
}

type LineData = { readonly partial?: boolean; readonly encoding?: 'base64' } | undefined;

/** A stdout line: stream-json as what it means, anything else as it came. */
function renderStdoutLine(content: string, data: LineData, paint: Palette): string[] {
  const raw = (): string[] => [`stdout: ${rawLine(content, data)}`];
  if (data?.encoding !== undefined || data?.partial === true) return raw();
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch {
    return raw();
  }
  if (!isRecord(parsed) || typeof parsed.type !== 'string') return raw();
  return renderStreamJson(parsed, parsed.type, paint);
}

function rawLine(content: string, data: LineData): string {
  const text =
    data?.encoding === 'base64' ? Buffer.from(content, 'base64').toString('utf8') : content;
  const shown = clip(sanitize(text), RAW_LINE_MAX_CHARS);
  return data?.partial === true ? `${shown} …(the line goes on)` : shown;
}

type Json = Readonly<Record<string, unknown>>;

function renderStreamJson(line: Json, type: string, paint: Palette): string[] {
  switch (type) {
    case 'system':
      return renderSystem(line, paint);
    case 'assistant':
      return contentBlocks(line).flatMap((block) => renderAssistantBlock(block, paint));
    case 'user':
      return contentBlocks(line).flatMap((block) =>
        block.type === 'tool_result' ? renderToolResult(block, paint) : [],
      );
    case 'result':
      return [paint.bold(describeResultLine(line))];
    case 'stream_event':
      // Token-by-token deltas (--include-partial-messages): the assistant lines repeat them whole.
      return [];
    default:
      return [paint.dim(`· ${sanitize(clip(type, 80))}`)];
  }
}

function renderSystem(line: Json, paint: Palette): string[] {
  const subtype = text(line.subtype);
  switch (subtype) {
    case 'init': {
      const parts: string[] = [];
      const model = text(line.model);
      const cwd = text(line.cwd);
      if (model !== undefined) parts.push(`model ${model}`);
      if (cwd !== undefined) parts.push(`cwd ${cwd}`);
      return [paint.dim(`· ${sanitize(parts.length > 0 ? parts.join(', ') : 'session started')}`)];
    }
    case 'api_retry': {
      const attempt = number(line.attempt);
      const max = number(line.max_retries);
      const status = number(line.error_status);
      const which = attempt === undefined ? '' : ` ${attempt}${max === undefined ? '' : `/${max}`}`;
      const why = status === undefined ? '' : ` (status ${status})`;
      return [paint.yellow(`! API error, retry${which}${why}`)];
    }
    case 'permission_denied':
      return [paint.yellow(`! permission denied: ${sanitize(text(line.tool_name) ?? 'a tool')}`)];
    case 'status': {
      const status = text(line.status);
      return status === undefined ? [] : [paint.dim(`· ${sanitize(clip(status, 80))}`)];
    }
    default:
      return [paint.dim(`· system: ${sanitize(clip(subtype ?? '?', 80))}`)];
  }
}

function renderAssistantBlock(block: Json, paint: Palette): string[] {
  if (block.type === 'text') {
    const body = text(block.text) ?? '';
    return body.trim() === '' ? [] : sanitize(body.trimEnd()).split('\n');
  }
  if (block.type === 'tool_use') {
    const name = sanitize(text(block.name) ?? 'tool');
    const summary = isRecord(block.input) ? summarizeInput(block.input) : '';
    return [paint.cyan(summary === '' ? `→ ${name}` : `→ ${name}: ${summary}`)];
  }
  // Thinking blocks and anything newer: the text and the tool calls tell the story.
  return [];
}

function summarizeInput(input: Json): string {
  for (const field of TELLING_INPUT_FIELDS) {
    const value = text(input[field]);
    if (value === undefined || value.trim() === '') continue;
    const lines = value.trim().split('\n');
    const first = lines[0] ?? '';
    return sanitize(clip(lines.length > 1 ? `${first} …` : first, TOOL_INPUT_MAX_CHARS));
  }
  return Object.keys(input).length === 0
    ? ''
    : sanitize(clip(JSON.stringify(input), TOOL_INPUT_MAX_CHARS));
}

function renderToolResult(block: Json, paint: Palette): string[] {
  const isError = block.is_error === true;
  const lines = sanitize(toolResultText(block.content)).trimEnd().split('\n');
  if (lines.length === 1 && lines[0] === '') {
    return [paint.dim(isError ? '← error (no text)' : '← (no output)')];
  }
  const shown: string[] = [];
  let budget = TOOL_RESULT_MAX_CHARS;
  for (const line of lines.slice(0, TOOL_RESULT_MAX_LINES)) {
    if (line.length > budget) {
      shown.push(`${line.slice(0, budget)}…`);
      break;
    }
    shown.push(line);
    budget -= line.length;
  }
  const more = lines.length - shown.length;
  const out = shown.map((line, index) =>
    index === 0 ? `← ${isError ? 'error: ' : ''}${line}` : `  ${line}`,
  );
  if (more > 0) out.push(`  … ${more} more ${more === 1 ? 'line' : 'lines'}`);
  return out.map(isError ? paint.red : paint.dim);
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      if (!isRecord(part)) return '';
      if (part.type === 'text') return text(part.text) ?? '';
      return `[${text(part.type) ?? 'content'}]`;
    })
    .join('\n');
}

function describeResultLine(line: Json): string {
  const subtype = text(line.subtype);
  const label =
    line.is_error === true
      ? subtype !== undefined && subtype !== 'success'
        ? subtype
        : 'error'
      : (subtype ?? 'done');
  const parts: string[] = [];
  const turns = number(line.num_turns);
  const usd = number(line.total_cost_usd);
  const ms = number(line.duration_ms);
  if (turns !== undefined) parts.push(`${turns} ${turns === 1 ? 'turn' : 'turns'}`);
  if (usd !== undefined) parts.push(formatCost(usd));
  if (ms !== undefined) parts.push(formatDuration(ms));
  return `= ${sanitize(label)}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

function contentBlocks(line: Json): Json[] {
  const message = line.message;
  if (!isRecord(message) || !Array.isArray(message.content)) return [];
  return (message.content as unknown[]).filter(isRecord);
}

export function formatDuration(ms: number): string {
  const seconds = ms / 1000;
  // 59.96 s would round to "60.0s": from there on, minutes.
  if (seconds < 59.95) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h ${pad(Math.floor(whole / 60) % 60)}m`;
}

export function formatCost(usd: number): string {
  return `$${usd.toFixed(4)}`;
}

const pad = (value: number): string => String(value).padStart(2, '0');

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function number(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function clip(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/**
 * What the model, its tools or a stray process printed must not drive the terminal: control
 * characters (escape sequences, carriage returns, ...) become visible replacement characters.
 */
function sanitize(value: string): string {
  return value.replace(/\r\n/g, '\n').replace(CONTROL_CHARACTERS, '\ufffd');
}

// Every C0 and C1 control but tab and newline.
// eslint-disable-next-line no-control-regex -- control characters are exactly what it matches
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
