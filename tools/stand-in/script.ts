/**
 * The script a prompt carries for the stand-in model: lines `stand-in: <step>`.
 *
 * The script lives in the prompt itself, not in the stand-in's state, so one stand-in can serve
 * concurrent jobs, and worker machines, without any side channel telling it what to answer.
 */

export type Step =
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
  | { readonly kind: 'malformed' }
  /** A line the stand-in cannot play; it answers with an error naming the problem instead. */
  | { readonly kind: 'invalid'; readonly line: string; readonly problem: string };

export type StepKind = Step['kind'];

const SCRIPT_LINE = /^[ \t]*stand-in:[ \t]*(.*?)[ \t]*$/;
const EDIT_SEPARATOR = ' :: ';
const KNOWN = 'say, bash, write, read, edit, http, malformed';

/** Whether the text holds at least one `stand-in:` line. */
export function hasScript(text: string): boolean {
  return text.split(/\r?\n/).some((line) => SCRIPT_LINE.test(line));
}

/** The steps of every `stand-in:` line in the text, in order; other text is ignored. */
export function parseScript(text: string): Step[] {
  const steps: Step[] = [];
  for (const line of text.split(/\r?\n/)) {
    const match = SCRIPT_LINE.exec(line);
    if (match) steps.push(parseStep(match[1] ?? ''));
  }
  return steps;
}

/** One step, from the text after `stand-in:`. */
export function parseStep(source: string): Step {
  const space = source.search(/\s/);
  const keyword = space === -1 ? source : source.slice(0, space);
  const rest = space === -1 ? '' : source.slice(space + 1).trim();
  const invalid = (problem: string): Step => ({ kind: 'invalid', line: source, problem });

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
    case '':
      return invalid(`an empty step (known steps: ${KNOWN})`);
    default:
      return invalid(`unknown step "${keyword}" (known steps: ${KNOWN})`);
  }
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
