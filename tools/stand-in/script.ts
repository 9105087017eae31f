/**
 * The script a prompt carries for the stand-in model: lines `stand-in: <step>`.
 *
 * The script lives in the prompt itself, not in the stand-in's state, so one stand-in can serve
 * concurrent jobs, and worker machines, without any side channel telling it what to answer.
 */

/** Token counts a scripted reply reports, so the CLI computes a cost of the script's choosing. */
export interface ScriptedUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/** What one model call plays, priced by the `usage` line before it when there is one. */
export type Step = PlayedStep & { readonly usage?: ScriptedUsage };

type PlayedStep =
  | { readonly kind: 'say'; readonly text: string }
  | { readonly kind: 'bash'; readonly command: string }
  | { readonly kind: 'write'; readonly path: string; readonly content: string }
  | { readonly kind: 'read'; readonly path: string }
  | {
      readonly kind: 'edit';
      readonly path: string;
      readonly oldText: string;
      readonly newText: string;
    }
  | {
      readonly kind: 'http';
      readonly status: number;
      /** Seconds for a `retry-after` header. */
      readonly retryAfter?: number;
      /** Answer the error this many times per session, then go on with the next step. */
      readonly times?: number;
    }
  /** A call of any tool by name (an MCP server's `mcp__<server>__<tool>`, say) with JSON input. */
  | { readonly kind: 'tool'; readonly name: string; readonly input: Record<string, unknown> }
  | { readonly kind: 'malformed' }
  /** A call of the StructuredOutput tool (offered when the CLI runs with --json-schema). */
  | { readonly kind: 'structured'; readonly value: Readonly<Record<string, unknown>> }
  /** A line the stand-in cannot play; it answers with an error naming the problem instead. */
  | { readonly kind: 'invalid'; readonly line: string; readonly problem: string };

export type StepKind = Step['kind'];

const SCRIPT_LINE = /^[ \t]*stand-in:[ \t]*(.*?)[ \t]*$/;
const EDIT_SEPARATOR = ' :: ';
const KNOWN = 'say, bash, write, read, edit, http, malformed, tool, structured, usage';
const USAGE = /^usage[ \t]+(\d{1,9})[ \t]+(\d{1,9})$/;

/** Whether the text holds at least one `stand-in:` line. */
export function hasScript(text: string): boolean {
  return text.split(/\r?\n/).some((line) => SCRIPT_LINE.test(line));
}

/**
 * The steps of every `stand-in:` line in the text, in order; other text is ignored. A `usage`
 * line is no step of its own: it prices the step after it.
 */
export function parseScript(text: string): Step[] {
  const steps: Step[] = [];
  let usage: { readonly value: ScriptedUsage; readonly line: string } | undefined;
  for (const line of text.split(/\r?\n/)) {
    const source = SCRIPT_LINE.exec(line)?.[1];
    if (source === undefined) continue;
    const priced = parseUsage(source);
    if (priced !== undefined && !('kind' in priced)) {
      usage = { value: priced, line: source };
      continue;
    }
    const step = priced ?? parseStep(source);
    steps.push(usage === undefined ? step : { ...step, usage: usage.value });
    usage = undefined;
  }
  if (usage !== undefined) {
    steps.push(invalidStep(usage.line, '`usage` must come before the step whose reply it prices'));
  }
  return steps;
}

/** A `usage <input_tokens> <output_tokens>` line, an invalid step, or undefined for other steps. */
export function parseUsage(source: string): ScriptedUsage | Step | undefined {
  if (!/^usage(\s|$)/.test(source)) return undefined;
  const match = USAGE.exec(source);
  if (!match) return invalidStep(source, '`usage` needs <input_tokens> <output_tokens>');
  return { inputTokens: Number(match[1]), outputTokens: Number(match[2]) };
}

const invalidStep = (line: string, problem: string): Step => ({ kind: 'invalid', line, problem });

/** One step, from the text after `stand-in:`. */
export function parseStep(source: string): Step {
  const space = source.search(/\s/);
  const keyword = space === -1 ? source : source.slice(0, space);
  const rest = space === -1 ? '' : source.slice(space + 1).trim();
  const invalid = (problem: string): Step => invalidStep(source, problem);

  switch (keyword) {
    case 'say':
      return rest === ''
        ? invalid('`say` needs a text')
        : { kind: 'say', text: unescapeText(rest) };
    case 'bash':
      // Verbatim: a shell command has its own quoting and escapes.
      return rest === '' ? invalid('`bash` needs a command') : { kind: 'bash', command: rest };
    case 'write': {
      const gap = rest.search(/\s/);
      if (rest === '') return invalid('`write` needs a path and a content');
      const path = gap === -1 ? rest : rest.slice(0, gap);
      const content = gap === -1 ? '' : rest.slice(gap + 1);
      return { kind: 'write', path, content: unescapeText(content) };
    }
    case 'read':
      return rest === '' ? invalid('`read` needs a path') : { kind: 'read', path: rest };
    case 'edit': {
      // The line is trimmed, so an empty new text leaves the line ending in ` ::`.
      const parts = (rest.endsWith(' ::') ? `${rest} ` : rest).split(EDIT_SEPARATOR);
      const [path, oldText, newText] = parts;
      if (
        parts.length !== 3 ||
        path === undefined ||
        oldText === undefined ||
        newText === undefined
      ) {
        return invalid('`edit` needs `<path> :: <old> :: <new>`');
      }
      if (path.trim() === '' || oldText === '') return invalid('`edit` needs a path and old text');
      return {
        kind: 'edit',
        path: path.trim(),
        oldText: unescapeText(oldText),
        newText: unescapeText(newText),
      };
    }
    case 'http':
      return parseHttp(rest, invalid);
    case 'malformed':
      return rest === '' ? { kind: 'malformed' } : invalid('`malformed` takes no argument');
    case 'tool':
      return parseToolStep(rest, invalid);
    case 'structured':
      return parseStructured(rest, invalid);
    case 'usage':
      return invalid('`usage` needs <input_tokens> <output_tokens> and a step after it');
    case '':
      return invalid(`an empty step (known steps: ${KNOWN})`);
    default:
      return invalid(`unknown step "${keyword}" (known steps: ${KNOWN})`);
  }
}

const TOOL_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** `tool <name> [<JSON object>]`: the input defaults to `{}`. */
function parseToolStep(rest: string, invalid: (problem: string) => Step): Step {
  const gap = rest.search(/\s/);
  const name = gap === -1 ? rest : rest.slice(0, gap);
  const json = gap === -1 ? '' : rest.slice(gap + 1).trim();
  if (!TOOL_NAME.test(name)) return invalid('`tool` needs a tool name and an optional JSON object');
  if (json === '') return { kind: 'tool', name, input: {} };
  const input = jsonObject(json);
  if (input === 'not JSON') return invalid(`\`tool\` input is not JSON: ${json}`);
  if (input === 'not an object') return invalid('`tool` input must be a JSON object');
  return { kind: 'tool', name, input };
}

/** The JSON object a `structured` step gives the StructuredOutput tool, verbatim. */
function parseStructured(rest: string, invalid: (problem: string) => Step): Step {
  const value = jsonObject(rest);
  if (typeof value === 'string') return invalid('`structured` needs a JSON object');
  return { kind: 'structured', value };
}

/** The JSON object the text holds, or what is wrong with it. */
function jsonObject(text: string): Record<string, unknown> | 'not JSON' | 'not an object' {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  return value as Record<string, unknown>;
}

/** `http <status> [retry-after=<seconds>] [times=<n> | once]`. */
function parseHttp(rest: string, invalid: (problem: string) => Step): Step {
  const [code = '', ...options] = rest.split(/\s+/);
  const status = /^\d{3}$/.test(code) ? Number(code) : NaN;
  if (!(status >= 400 && status <= 599)) {
    return invalid('`http` needs an error status from 400 to 599');
  }
  let step: Step & { kind: 'http' } = { kind: 'http', status };
  for (const option of options) {
    const retryAfter = /^retry-after=(\d{1,5})$/.exec(option);
    const times = /^times=([1-9]\d{0,3})$/.exec(option);
    if (retryAfter) step = { ...step, retryAfter: Number(retryAfter[1]) };
    else if (times) step = { ...step, times: Number(times[1]) };
    else if (option === 'once') step = { ...step, times: 1 };
    else return invalid(`\`http\` takes retry-after=<seconds>, times=<n> or once, not "${option}"`);
  }
  return step;
}

/**
 * `\n`, `\t` and `\\` in texts, so one script line can stand for several lines of a file. Bash
 * commands are left alone: the shell has its own escapes.
 */
export function unescapeText(text: string): string {
  return text.replace(/\\([nt\\])/g, (_match, char: string) =>
    char === 'n' ? '\n' : char === 't' ? '\t' : '\\',
  );
}

/** The text a `say` step answers with, `{{result}}` being the latest tool result's text. */
export function fillResult(text: string, latestToolResult: string | undefined): string {
  return text.replaceAll('{{result}}', latestToolResult ?? '');
}
