import { randomUUID } from 'node:crypto';
import type { ScriptedUsage } from './script.js';
import type { Reply } from './scripted-model.js';

/**
 * The Messages API's shapes for a reply: a server-sent event stream when the request asked for
 * `"stream": true`, else one JSON message (the CLI falls back to that when a stream fails).
 */

type ContentBlock =
  | { readonly type: 'text'; readonly text: string }
  | {
      readonly type: 'tool_use';
      readonly id: string;
      readonly name: string;
      readonly input: Record<string, unknown>;
    };

export interface Usage {
  readonly input_tokens: number;
  readonly output_tokens: number;
}

/** Fixed input and size-based output: the same script costs the same, and never zero. */
export const INPUT_TOKENS = 100;

export function usageFor(block: ContentBlock, scripted?: ScriptedUsage): Usage {
  if (scripted !== undefined) {
    return { input_tokens: scripted.inputTokens, output_tokens: scripted.outputTokens };
  }
  const size = block.type === 'text' ? block.text.length : JSON.stringify(block.input).length;
  return { input_tokens: INPUT_TOKENS, output_tokens: Math.max(1, Math.ceil(size / 4)) };
}

export function contentBlock(reply: Reply & { kind: 'text' | 'tool' }): ContentBlock {
  return reply.kind === 'text'
    ? { type: 'text', text: reply.text }
    : { type: 'tool_use', id: newId('toolu'), name: reply.name, input: reply.input };
}

function newId(prefix: string): string {
  return `${prefix}_standin_${randomUUID().replaceAll('-', '')}`;
}

function stopReason(block: ContentBlock): 'end_turn' | 'tool_use' {
  return block.type === 'tool_use' ? 'tool_use' : 'end_turn';
}

/** The whole answer as one JSON message, for a request without `"stream": true`. */
export function messageJson(block: ContentBlock, model: string, usage = usageFor(block)): string {
  return JSON.stringify({
    id: newId('msg'),
    type: 'message',
    role: 'assistant',
    model,
    content: [block],
    stop_reason: stopReason(block),
    stop_sequence: null,
    usage,
  });
}

function event(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

/** The answer as the event stream the API sends: one content block, in one delta. */
export function messageEvents(block: ContentBlock, model: string, usage = usageFor(block)): string {
  const start =
    block.type === 'text' ? { type: 'text', text: '' } : { ...block, input: {} as unknown };
  const delta =
    block.type === 'text'
      ? { type: 'text_delta', text: block.text }
      : { type: 'input_json_delta', partial_json: JSON.stringify(block.input) };
  return [
    event('message_start', {
      message: {
        id: newId('msg'),
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
      },
    }),
    event('content_block_start', { index: 0, content_block: start }),
    event('content_block_delta', { index: 0, delta }),
    event('content_block_stop', { index: 0 }),
    event('message_delta', {
      delta: { stop_reason: stopReason(block), stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    }),
    event('message_stop', {}),
  ].join('');
}

/** The error types the API names for each status. */
export function errorType(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request_error';
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
    default:
      return status >= 500 ? 'api_error' : 'invalid_request_error';
  }
}

export function errorJson(status: number, message: string): string {
  return JSON.stringify({ type: 'error', error: { type: errorType(status), message } });
}

/**
 * What `malformed` answers: a 200 whose body is no Messages API reply at all, as a proxy or a
 * captive portal might send. The same for a stream and for the CLI's non-streaming retry, so
 * both attempts fail alike.
 */
export const MALFORMED_BODY = 'stand-in: this is deliberately not a Messages API response\n';
export const MALFORMED_CONTENT_TYPE = 'text/plain; charset=utf-8';
