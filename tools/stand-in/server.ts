import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { readConversation } from './conversation.js';
import { decideFor, type Scenario } from './scripted-model.js';
import { StepMemory } from './step-memory.js';
import type { StepKind } from './script.js';
import {
  contentBlock,
  errorJson,
  MALFORMED_BODY,
  MALFORMED_CONTENT_TYPE,
  messageEvents,
  messageJson,
  usageFor,
} from './wire-format.js';
import { listen } from '../../src/common/listen.js';

/** What the stand-in did with a request. */
export interface Played {
  /** Script scenarios, or what a request outside the conversation was. */
  readonly scenario:
    Scenario | 'probe' | 'count-tokens' | 'unreadable-request' | 'body-too-large' | 'not-found';
  readonly status: number;
  /** The script step played, counted from 0. */
  readonly step?: number;
  readonly stepKind?: StepKind;
  readonly steps?: number;
  /** What it answered: text, a tool call (with the tool's name), an error, malformed. */
  readonly reply?: string;
  readonly stream?: boolean;
}

export interface RecordedRequest {
  readonly at: string;
  readonly method: string;
  /** As sent, query included: `/v1/messages?beta=true`. */
  readonly path: string;
  /** The API key headers are redacted. */
  readonly headers: Readonly<IncomingHttpHeaders>;
  /** The parsed JSON body, when there is one. */
  readonly body?: unknown;
  readonly played: Played;
}

export interface StandInOptions {
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** 127.0.0.1 by default. */
  readonly host?: string;
  readonly onRequest?: (request: RecordedRequest) => void;
  /** Keep only the latest this many requests (bodies are large); all of them by default. */
  readonly keepRequests?: number;
}

export interface StandIn {
  /** The base URL for ANTHROPIC_BASE_URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly requests: readonly RecordedRequest[];
  clearRequests(): void;
  /** Stops listening and closes open (keep-alive) connections. */
  close(): Promise<void>;
}

/** Where a test or a person in another process reads (GET) or clears (DELETE) the requests. */
export const REQUESTS_PATH = '/_stand-in/requests';
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const SECRET_HEADERS = ['x-api-key', 'authorization'];

class BodyTooLarge extends Error {}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function redact(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const copy = { ...headers };
  for (const name of SECRET_HEADERS) if (copy[name] !== undefined) copy[name] = '[redacted]';
  return copy;
}

interface Answer {
  readonly status: number;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
  readonly played: Played;
}

function jsonError(status: number, message: string, played: Omit<Played, 'status'>): Answer {
  return {
    status,
    contentType: 'application/json',
    body: errorJson(status, message),
    played: { ...played, status },
  };
}

/** The answer to a Messages API call: the script decides, the wire format follows the request. */
function answerMessages(body: unknown, memory: StepMemory): Answer {
  const conversation = readConversation(body);
  const { stream, model } = conversation;
  const decision = decideFor(conversation, memory);
  const played = {
    scenario: decision.scenario,
    ...(decision.step === undefined ? {} : { step: decision.step }),
    ...(decision.stepKind === undefined ? {} : { stepKind: decision.stepKind }),
    steps: decision.steps,
    stream,
  };
  const { reply } = decision;
  switch (reply.kind) {
    case 'error': {
      const answer = jsonError(reply.status, reply.message, { ...played, reply: 'error' });
      if (reply.retryAfter === undefined) return answer;
      return { ...answer, headers: { 'retry-after': String(reply.retryAfter) } };
    }
    case 'malformed':
      return {
        status: 200,
        contentType: MALFORMED_CONTENT_TYPE,
        body: MALFORMED_BODY,
        played: { ...played, status: 200, reply: 'malformed' },
      };
    case 'text':
    case 'tool': {
      const block = contentBlock(reply);
      const usage = usageFor(block, reply.usage);
      const description = reply.kind === 'tool' ? `tool ${reply.name}` : 'text';
      return {
        status: 200,
        contentType: stream ? 'text/event-stream' : 'application/json',
        body: stream ? messageEvents(block, model, usage) : messageJson(block, model, usage),
        played: { ...played, status: 200, reply: description },
      };
    }
  }
}

function route(
  method: string,
  pathname: string,
  raw: string,
  memory: StepMemory,
): { answer: Answer; body?: unknown } {
  if (method === 'HEAD' || (method === 'GET' && pathname === '/')) {
    // The CLI probes the base URL before its first call.
    return {
      answer: {
        status: 200,
        contentType: 'text/plain',
        body: 'claudebox stand-in\n',
        played: { scenario: 'probe', status: 200 },
      },
    };
  }
  const messages = pathname === '/v1/messages';
  const countTokens = pathname === '/v1/messages/count_tokens';
  if (method !== 'POST' || !(messages || countTokens)) {
    return {
      answer: jsonError(404, `The stand-in does not serve ${method} ${pathname}`, {
        scenario: 'not-found',
      }),
    };
  }
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return {
      answer: jsonError(400, 'The request body is not JSON', { scenario: 'unreadable-request' }),
    };
  }
  if (countTokens) {
    return {
      body,
      answer: {
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({ input_tokens: Math.max(1, Math.ceil(raw.length / 4)) }),
        played: { scenario: 'count-tokens', status: 200 },
      },
    };
  }
  return { body, answer: answerMessages(body, memory) };
}

/** Answers each request and keeps the log of them that `GET /_stand-in/requests` shows. */
class Exchange {
  readonly requests: RecordedRequest[] = [];
  private readonly memory = new StepMemory();
  private served = 0;

  constructor(private readonly options: StandInOptions) {}

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    const path = request.url ?? '/';
    const pathname = new URL(path, 'http://stand-in').pathname;
    if (pathname === REQUESTS_PATH) {
      await this.serveLog(request, response, method);
      return;
    }
    const recorded = await this.answer(request, response, method, path, pathname);
    this.requests.push(recorded);
    const keep = this.options.keepRequests ?? Infinity;
    if (this.requests.length > keep) this.requests.splice(0, this.requests.length - keep);
    this.options.onRequest?.(recorded);
  }

  private async serveLog(
    request: IncomingMessage,
    response: ServerResponse,
    method: string,
  ): Promise<void> {
    await readBody(request);
    if (method === 'DELETE') this.requests.length = 0;
    const list = method === 'GET' ? JSON.stringify(this.requests) : '[]';
    response.writeHead(method === 'GET' || method === 'DELETE' ? 200 : 405, {
      'content-type': 'application/json',
    });
    response.end(list);
  }

  private async answer(
    request: IncomingMessage,
    response: ServerResponse,
    method: string,
    path: string,
    pathname: string,
  ): Promise<RecordedRequest> {
    const seen = { at: new Date().toISOString(), method, path, headers: redact(request.headers) };
    try {
      const { answer, body } = route(method, pathname, await readBody(request), this.memory);
      this.send(response, answer);
      return { ...seen, ...(body === undefined ? {} : { body }), played: answer.played };
    } catch (error) {
      const tooLarge = error instanceof BodyTooLarge;
      const answer = jsonError(
        tooLarge ? 413 : 400,
        tooLarge ? 'The request body is too large' : 'The request could not be read',
        { scenario: tooLarge ? 'body-too-large' : 'unreadable-request' },
      );
      if (!response.headersSent) this.send(response, answer);
      return { ...seen, played: answer.played };
    }
  }

  private send(response: ServerResponse, answer: Answer): void {
    this.served += 1;
    response.writeHead(answer.status, {
      ...(answer.contentType ? { 'content-type': answer.contentType } : {}),
      ...answer.headers,
      'request-id': `req_standin_${this.served}`,
    });
    response.end(answer.body);
  }
}

export async function startStandIn(options: StandInOptions = {}): Promise<StandIn> {
  const exchange = new Exchange(options);
  const server = createServer((request, response) => {
    exchange.handle(request, response).catch((error: unknown) => {
      // The callback must not throw into node:http; a broken connection is all this can be.
      if (!response.headersSent) response.writeHead(500);
      response.end(String(error));
    });
  });
  await listen(server, options.port ?? 0, options.host ?? '127.0.0.1');
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${reachableHost(address)}:${address.port}`,
    requests: exchange.requests,
    clearRequests: () => {
      exchange.requests.length = 0;
    },
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error) reject(error);
          else resolve();
        });
        // The CLI keeps its connection alive; without this, close waits for it to go away.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** A URL a client can dial: listening on every address means reachable on loopback. */
function reachableHost(address: AddressInfo): string {
  if (address.address === '0.0.0.0') return '127.0.0.1';
  if (address.address === '::') return '[::1]';
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}
