import { isAbsolute, resolve } from 'node:path';
import { readConversation, type Conversation } from './conversation.js';
import { fillResult, type ScriptedUsage, type Step, type StepKind } from './script.js';
import type { StepMemory } from './step-memory.js';

/** What the stand-in answers, before it is put into the Messages API's wire format. */
export type Reply =
  | { readonly kind: 'text'; readonly text: string; readonly usage?: ScriptedUsage }
  | {
      readonly kind: 'tool';
      readonly name: string;
      readonly input: Record<string, unknown>;
      readonly usage?: ScriptedUsage;
    }
  | {
      readonly kind: 'error';
      readonly status: number;
      readonly message: string;
      /** Seconds, for a `retry-after` header. */
      readonly retryAfter?: number;
    }
  | { readonly kind: 'malformed' };

/**
 * Why it answered so: a script step, the end of a script, a prompt without a script, or a
 * request with no prompt or no tools (the CLI's side requests, e.g. a title for the session).
 */
export type Scenario = 'step' | 'script-done' | 'no-script' | 'side-request';

export interface Decision {
  readonly scenario: Scenario;
  /** The step played, counted from 0, when the scenario is 'step'. */
  readonly step?: number;
  readonly stepKind?: StepKind;
  /** How many steps the script has. */
  readonly steps: number;
  readonly reply: Reply;
}

/** Generous, so a long scripted command is not cut by the Bash tool's 2 minute default. */
export const BASH_TIMEOUT_MS = 600_000;
const PROMPT_ECHO_LENGTH = 80;
/** The tool through which the CLI (run with --json-schema) takes the model's structured answer. */
export const STRUCTURED_OUTPUT_TOOL = 'StructuredOutput';

export function decide(body: unknown): Decision {
  return decideFor(readConversation(body));
}

/**
 * What to answer. `memory` (the server's) lets a limited error step (`http 429 once`) be
 * answered only so often per session; without it such a step answers every time.
 */
export function decideFor(conversation: Conversation, memory?: StepMemory): Decision {
  const { steps, prompt } = conversation;
  const base = { steps: steps.length };
  if (prompt === undefined) {
    return { ...base, scenario: 'side-request', reply: { kind: 'text', text: 'OK.' } };
  }
  if (steps.length === 0) {
    return { ...base, scenario: 'no-script', reply: { kind: 'text', text: echo(prompt) } };
  }
  const index = currentStep(conversation, memory);
  const step = index === undefined ? undefined : steps[index];
  if (index === undefined || step === undefined) {
    const text = conversation.endsWithToolResult
      ? `Done. The tool said: ${conversation.latestToolResult ?? ''}`
      : 'Done.';
    return { ...base, scenario: 'script-done', reply: { kind: 'text', text } };
  }
  const reply = play(step, conversation);
  if (reply.kind === 'tool' && conversation.toolNames.length === 0) {
    // A side request that quotes the prompt (a title, a summary) has no tools to call.
    return { ...base, scenario: 'side-request', reply: { kind: 'text', text: 'OK.' } };
  }
  if (step.kind === 'http' && step.times !== undefined) {
    memory?.record(conversation.sessionId, steps, index);
  }
  const priced =
    step.usage !== undefined && (reply.kind === 'text' || reply.kind === 'tool')
      ? { ...reply, usage: step.usage }
      : reply;
  return { ...base, scenario: 'step', step: index, stepKind: step.kind, reply: priced };
}

/**
 * The step to play: the one after as many as were answered, where a limited error step that
 * was answered its number of times is passed over (a failed call leaves no answer behind).
 */
function currentStep(
  conversation: Conversation,
  memory: StepMemory | undefined,
): number | undefined {
  const { steps, played, sessionId } = conversation;
  let answers = 0;
  for (const [index, step] of steps.entries()) {
    const spent =
      step.kind === 'http' &&
      step.times !== undefined &&
      memory !== undefined &&
      memory.count(sessionId, steps, index) >= step.times;
    if (spent) continue;
    if (answers === played) return index;
    answers += 1;
  }
  return undefined;
}

function echo(prompt: string): string {
  const firstLine = prompt.trim().split(/\r?\n/)[0] ?? '';
  const shown =
    firstLine.length > PROMPT_ECHO_LENGTH
      ? `${firstLine.slice(0, PROMPT_ECHO_LENGTH)}…`
      : firstLine;
  return `Scripted reply to: ${shown}`;
}

function play(step: Step, conversation: Conversation): Reply {
  // The file tools refuse relative paths.
  const absolute = (path: string): string =>
    isAbsolute(path) || conversation.workingDirectory === undefined
      ? path
      : resolve(conversation.workingDirectory, path);

  switch (step.kind) {
    case 'say':
      return { kind: 'text', text: fillResult(step.text, conversation.latestToolResult) };
    case 'bash':
      return {
        kind: 'tool',
        name: 'Bash',
        input: {
          command: step.command,
          description: 'Run the scripted command',
          timeout: BASH_TIMEOUT_MS,
        },
      };
    case 'write':
      return {
        kind: 'tool',
        name: 'Write',
        input: { file_path: absolute(step.path), content: step.content },
      };
    case 'read':
      return { kind: 'tool', name: 'Read', input: { file_path: absolute(step.path) } };
    case 'edit':
      return {
        kind: 'tool',
        name: 'Edit',
        input: {
          file_path: absolute(step.path),
          old_string: step.oldText,
          new_string: step.newText,
        },
      };
    case 'http':
      return {
        kind: 'error',
        status: step.status,
        message: `Scripted HTTP ${step.status} from the stand-in`,
        ...(step.retryAfter === undefined ? {} : { retryAfter: step.retryAfter }),
      };
    case 'malformed':
      return { kind: 'malformed' };
    case 'tool':
      return { kind: 'tool', name: step.name, input: step.input };
    case 'structured':
      return { kind: 'tool', name: STRUCTURED_OUTPUT_TOOL, input: { ...step.value } };
    case 'invalid':
      return {
        kind: 'error',
        status: 400,
        message: `stand-in script: cannot play "stand-in: ${step.line}": ${step.problem}`,
      };
  }
}
