import { request, type IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/index.js';

/** One Server-Sent Event as a browser's EventSource would see it. */
export interface SseMessage {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Splits SSE text into messages; a trailing incomplete one is left out. */
export function parseSse(text: string): SseMessage[] {
  const blocks = text.split('\n\n');
  blocks.pop();
  return blocks.flatMap((block) => {
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(':');
      if (colon === 0) continue; // a comment
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      if (field === 'event') event = value;
      if (field === 'data') data.push(value);
    }
    return data.length === 0 ? [] : [{ id, event, data: data.join('\n') }];
  });
}

export interface SseResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly messages: SseMessage[];
}

/** A GET, read to its end (or until `until` says enough, then the connection is dropped). */
export function get(
  url: string,
  options: {
    headers?: Record<string, string>;
    until?: (messages: SseMessage[]) => boolean;
    /** Called with everything received so far, on each chunk. */
    onMessages?: (messages: SseMessage[]) => void;
  } = {},
): Promise<SseResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: options.headers ?? {} }, (res) => {
      let body = '';
      const done = (): void =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          messages: parseSse(body),
        });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        options.onMessages?.(parseSse(body));
        if (options.until?.(parseSse(body))) {
          req.destroy();
          done();
        }
      });
      res.on('end', done);
      res.on('error', () => done());
    });
    req.on('error', reject);
    req.end();
  });
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  close(): Promise<void>;
}

/** A gateway on a free port of 127.0.0.1. */
export async function startTestGateway(options: GatewayOptions): Promise<TestGateway> {
  const gateway = createGateway(options);
  const server: Server = createServer(gateway.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    gateway,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      await gateway.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
