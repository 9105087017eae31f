import { request as httpRequest, Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startStandIn, type RecordedRequest, type StandIn } from '../../tools/stand-in/index.js';

let standIn: StandIn | undefined;
afterEach(async () => {
  await standIn?.close();
  standIn = undefined;
});

async function start(onRequest?: (r: RecordedRequest) => void): Promise<StandIn> {
  standIn = await startStandIn({ onRequest });
  return standIn;
}

function messagesBody(prompt: string, stream = true) {
  return {
    model: 'claude-test',
    stream,
    max_tokens: 1000,
    tools: [{ name: 'Bash', input_schema: {} }],
    messages: [{ role: 'user', content: [{ type: 'text', text: prompt }] }],
  };
}

async function post(url: string, body: unknown, path = '/v1/messages?beta=true') {
  return fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'secret-key' },
    body: JSON.stringify(body),
  });
}

interface StreamEvent {
  readonly type: string;
  readonly message?: Record<string, unknown>;
  readonly content_block?: Record<string, unknown>;
  readonly delta?: {
    readonly type?: string;
    readonly text?: string;
    readonly partial_json?: string;
    readonly stop_reason?: string;
  };
  readonly usage?: { readonly output_tokens?: number };
}

/** The events of a server-sent event stream, checking each event's name matches its type. */
function parseEvents(text: string): StreamEvent[] {
  return text
    .split('\n\n')
    .filter((chunk) => chunk.trim() !== '')
    .map((chunk) => {
      const [eventLine, dataLine, ...rest] = chunk.split('\n');
      expect(rest).toEqual([]);
      const name = eventLine?.replace(/^event: /, '');
      const data = JSON.parse(dataLine?.replace(/^data: /, '') ?? 'null') as StreamEvent;
      expect(data.type).toBe(name);
      return data;
    });
}

describe('the stand-in server', () => {
  it('listens on a free loopback port by default', async () => {
    const { url } = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
  });

  it('streams a text answer as the Messages API event sequence', async () => {
    const { url } = await start();
    const response = await post(url, messagesBody('stand-in: say Hello there'));

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const events = parseEvents(await response.text());
    expect(events.map((e) => e.type)).toEqual([
      'message_start',
      'content_block_start',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(events[0]?.message).toMatchObject({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: 'claude-test',
      content: [],
      stop_reason: null,
      usage: { input_tokens: 100 },
    });
    expect(events[1]?.content_block).toEqual({ type: 'text', text: '' });
    expect(events[2]?.delta).toEqual({ type: 'text_delta', text: 'Hello there' });
    expect(events[4]?.delta?.stop_reason).toBe('end_turn');
    expect(events[4]?.usage?.output_tokens).toBeGreaterThan(0);
  });

  it('streams a tool call as a tool_use block whose input comes as JSON deltas', async () => {
    const { url } = await start();
    const response = await post(url, messagesBody('stand-in: bash echo hi'));
    const events = parseEvents(await response.text());

    expect(events[1]?.content_block).toEqual({
      type: 'tool_use',
      id: expect.stringMatching(/^toolu_/),
      name: 'Bash',
      input: {},
    });
    expect(events[2]?.delta?.type).toBe('input_json_delta');
    expect(JSON.parse(events[2]?.delta?.partial_json ?? '')).toEqual({
      command: 'echo hi',
      description: 'Run the scripted command',
      timeout: 600_000,
    });
    expect(events[4]?.delta?.stop_reason).toBe('tool_use');
  });

  it('gives the same usage for the same script every time', async () => {
    const { url } = await start();
    const usages = await Promise.all(
      [1, 2].map(async () => {
        const events = parseEvents(
          await (await post(url, messagesBody('stand-in: say same'))).text(),
        );
        return [events[0]?.message?.usage, events[4]?.usage];
      }),
    );
    expect(usages[0]).toEqual(usages[1]);
  });

  it('answers a request without "stream": true with one JSON message', async () => {
    const { url } = await start();
    const response = await post(url, messagesBody('stand-in: say plain', false));

    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toMatchObject({
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text: 'plain' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 100, output_tokens: expect.any(Number) },
    });
  });

  it('answers an http step with that status and an Anthropic error body', async () => {
    const { url } = await start();
    const cases = [
      [400, 'invalid_request_error'],
      [401, 'authentication_error'],
      [429, 'rate_limit_error'],
      [500, 'api_error'],
      [529, 'overloaded_error'],
    ] as const;
    for (const [status, type] of cases) {
      const response = await post(url, messagesBody(`stand-in: http ${status}`));
      expect(response.status).toBe(status);
      expect(await response.json()).toEqual({
        type: 'error',
        error: { type, message: expect.stringContaining(String(status)) },
      });
    }
  });

  it('answers a limited http step with its retry-after that often per session, then goes on', async () => {
    const { url } = await start();
    const inSession = (session: string) => ({
      ...messagesBody('stand-in: http 429 retry-after=3 times=2\nstand-in: say Served.'),
      metadata: { user_id: JSON.stringify({ device_id: 'd', session_id: session }) },
    });
    const first = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
    const second = '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f';
    const statuses: number[] = [];
    for (const session of [first, first, second, first]) {
      const response = await post(url, inSession(session));
      statuses.push(response.status);
      if (response.status === 429) expect(response.headers.get('retry-after')).toBe('3');
      else expect(await response.text()).toContain('Served.');
    }
    // Another session gets its own two errors.
    expect(statuses).toEqual([429, 429, 429, 200]);
  });

  it('answers a malformed step with a 200 that is no API reply, streaming or not', async () => {
    const { url } = await start();
    for (const stream of [true, false]) {
      const response = await post(url, messagesBody('stand-in: malformed', stream));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await response.text()).toMatch(/not a Messages API response/);
    }
  });

  it('answers HEAD /, count_tokens, and unknown paths the way the API would', async () => {
    const { url } = await start();
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    const count = await post(url, messagesBody('x'), '/v1/messages/count_tokens?beta=true');
    expect(await count.json()).toEqual({ input_tokens: expect.any(Number) });
    const missing = await fetch(`${url}/v1/models`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { type: 'not_found_error' } });
    const notJson = await fetch(`${url}/v1/messages`, { method: 'POST', body: '{oops' });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('records each request with its body and what it played, keys redacted', async () => {
    const seen: RecordedRequest[] = [];
    const s = await start((r) => seen.push(r));
    await post(s.url, messagesBody('stand-in: say one'));
    await fetch(s.url, { method: 'HEAD' });

    expect(s.requests).toHaveLength(2);
    expect(seen).toEqual(s.requests);
    expect(s.requests[0]).toMatchObject({
      method: 'POST',
      path: '/v1/messages?beta=true',
      headers: { 'x-api-key': '[redacted]', 'content-type': 'application/json' },
      body: messagesBody('stand-in: say one'),
      played: {
        scenario: 'step',
        step: 0,
        stepKind: 'say',
        steps: 1,
        status: 200,
        reply: 'text',
        stream: true,
      },
    });
    expect(s.requests[1]).toMatchObject({
      method: 'HEAD',
      path: '/',
      played: { scenario: 'probe' },
    });
    expect(s.requests[1]).not.toHaveProperty('body');

    s.clearRequests();
    expect(s.requests).toEqual([]);
  });

  it('keeps only the latest requests when told to', async () => {
    standIn = await startStandIn({ keepRequests: 2 });
    for (const text of ['one', 'two', 'three']) {
      await post(standIn.url, messagesBody(`stand-in: say ${text}`));
    }
    expect(standIn.requests.map((r) => r.body)).toEqual([
      messagesBody('stand-in: say two'),
      messagesBody('stand-in: say three'),
    ]);
  });

  it('lists and clears the recorded requests over HTTP for other processes', async () => {
    const { url } = await start();
    await post(url, messagesBody('stand-in: say listed'));

    const listed = (await (await fetch(`${url}/_stand-in/requests`)).json()) as RecordedRequest[];
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ method: 'POST', body: { model: 'claude-test' } });

    expect((await fetch(`${url}/_stand-in/requests`, { method: 'DELETE' })).status).toBe(200);
    expect(await (await fetch(`${url}/_stand-in/requests`)).json()).toEqual([]);
  });

  it('closes even while a client keeps its connection alive, and twice without harm', async () => {
    const s = await start();
    const agent = new Agent({ keepAlive: true });
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = httpRequest(`${s.url}/`, { method: 'HEAD', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          resolve(res.statusCode);
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);

    await s.close();
    await s.close();
    standIn = undefined;
    await expect(fetch(`${s.url}/`, { method: 'HEAD' })).rejects.toThrow();
    agent.destroy();
  });
});
