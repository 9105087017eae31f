import { hasScript, parseScript, type Step } from './script.js';

/**
 * What the stand-in needs from a Messages API request body, read defensively: the body comes
 * from whatever CLI version is installed, and an odd shape must give an answer, not a crash.
 */
export interface Conversation {
  readonly model: string;
  readonly stream: boolean;
  /** Names of the tools the request offers; side requests offer none. */
  readonly toolNames: readonly string[];
  /** The latest prompt a person wrote: the last text block of a user message, not a reminder. */
  readonly prompt: string | undefined;
  /** The script of the latest prompt that has one; empty when no prompt has one. */
  readonly steps: readonly Step[];
  /** Assistant messages after that scripted message: how many of its steps were played. */
  readonly played: number;
  /** Text of the latest tool result anywhere in the request. */
  readonly latestToolResult: string | undefined;
  /** Whether the request ends with tool results, i.e. the previous answer was a tool step. */
  readonly endsWithToolResult: boolean;
  /** The directory the CLI says it works in (relative paths in a script are resolved there). */
  readonly workingDirectory: string | undefined;
  /** The Claude session the request belongs to, as the CLI states it in `metadata.user_id`. */
  readonly sessionId: string | undefined;
}

interface Message {
  readonly role: string;
  readonly blocks: readonly Block[];
}

type Block = Readonly<Record<string, unknown>> & { readonly type?: unknown };

const REMINDER = '<system-reminder>';
const WORKING_DIRECTORY = /(?:Primary working directory|Working directory):[ \t]*(\S[^\n]*)/g;

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Message content is either a string or a list of blocks; make it always blocks. */
function toBlocks(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content)) return [];
  return content.filter(isRecord);
}

function textsOf(blocks: readonly Block[]): string[] {
  return blocks
    .filter((block) => block.type === 'text' && typeof block.text === 'string')
    .map((block) => block.text as string);
}

/** What a person wrote in a user message: its text blocks, leaving out the CLI's reminders. */
function promptTexts(message: Message): string[] {
  if (message.role !== 'user') return [];
  return textsOf(message.blocks).filter((text) => !text.trimStart().startsWith(REMINDER));
}

/** A tool result's content is a string or a list of blocks, of which only text is shown. */
function toolResultText(block: Block): string {
  if (typeof block.content === 'string') return block.content;
  return textsOf(toBlocks(block.content)).join('\n');
}

function readMessages(body: Readonly<Record<string, unknown>>): Message[] {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  return messages.filter(isRecord).map((message) => ({
    role: typeof message.role === 'string' ? message.role : '',
    blocks: toBlocks(message.content),
  }));
}

/**
 * The CLI states its working directory in the system prompt or in a system message of the
 * conversation (2.1.330: "Primary working directory: /x" in a `role: "system"` message); look
 * in every place the CLI writes, never in the user's own text.
 */
function findWorkingDirectory(
  body: Readonly<Record<string, unknown>>,
  messages: readonly Message[],
): string | undefined {
  const places = [
    ...textsOf(toBlocks(body.system)),
    ...messages.filter((m) => m.role === 'system').flatMap((m) => textsOf(m.blocks)),
    ...messages
      .filter((m) => m.role === 'user')
      .flatMap((m) => textsOf(m.blocks))
      .filter((text) => text.trimStart().startsWith(REMINDER)),
  ];
  let found: string | undefined;
  for (const text of places) {
    for (const match of text.matchAll(WORKING_DIRECTORY)) found = match[1]?.trim();
  }
  return found;
}

export function readConversation(body: unknown): Conversation {
  const request = isRecord(body) ? body : {};
  const messages = readMessages(request);

  // The CLI merges consecutive user messages (prompts of resumed runs that failed before any
  // answer end up in one message), so within a message the latest text block is the latest
  // prompt.
  let scripted = -1;
  let script: string | undefined;
  let prompt: string | undefined;
  messages.forEach((message, index) => {
    for (const text of promptTexts(message)) {
      prompt = text;
      if (hasScript(text)) {
        scripted = index;
        script = text;
      }
    }
  });

  let latestToolResult: string | undefined;
  for (const message of messages) {
    for (const block of message.blocks) {
      if (block.type === 'tool_result') latestToolResult = toolResultText(block);
    }
  }

  const last = messages.at(-1);
  const tools = Array.isArray(request.tools) ? request.tools.filter(isRecord) : [];
  return {
    model: typeof request.model === 'string' ? request.model : 'claude-stand-in',
    stream: request.stream === true,
    toolNames: tools.map((tool) => tool.name).filter((name) => typeof name === 'string'),
    prompt,
    steps: script === undefined ? [] : parseScript(script),
    played: scripted === -1 ? 0 : messages.slice(scripted + 1).filter(isScriptedAnswer).length,
    latestToolResult,
    endsWithToolResult:
      last?.role === 'user' && last.blocks.some((block) => block.type === 'tool_result'),
    workingDirectory: findWorkingDirectory(request, messages),
    sessionId: findSessionId(request.metadata),
  };
}

const SESSION_ID =
  /session_?id"?\s*[:=]?\s*"?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/i;
const OLD_SESSION_ID = /_session_([0-9a-f-]{36})$/;

/** 2.1.330 sends `user_id` as JSON holding `session_id`; older CLIs ended it with `_session_<id>`. */
function findSessionId(metadata: unknown): string | undefined {
  const userId = isRecord(metadata) ? metadata.user_id : undefined;
  if (typeof userId !== 'string') return undefined;
  return (SESSION_ID.exec(userId) ?? OLD_SESSION_ID.exec(userId))?.[1];
}

/**
 * The text the CLI puts in as the assistant's turn after a tool call that a killed run never
 * finished; it is the CLI's filler, not a step the stand-in played.
 */
const INTERRUPTION_FILLER = 'No response requested.';

function isScriptedAnswer(message: Message): boolean {
  if (message.role !== 'assistant') return false;
  const texts = textsOf(message.blocks);
  return !(texts.length === message.blocks.length && texts.join('').trim() === INTERRUPTION_FILLER);
}
