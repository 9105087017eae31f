import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { get } from '../support/sse.js';
import {
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const root = new URL('../../', import.meta.url).pathname;
const OPERATOR = 'operator-token-of-the-serve-test';

interface Serve {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly exited: Promise<number | string>;
}

/** `claudebox serve` from the build, as a user starts it. */
function serve(args: string[], env: Record<string, string>): Serve {
  const child = spawn(process.execPath, [join(root, 'dist/cli/main.js'), 'serve', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  return { child, stderr: () => stderr, exited };
}

describe('claudebox serve', () => {
  let queueName: string;
  let worker: TestWorker;
  let client: ClaudeboxClient;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture('claude-tools.mjs') });
    client = createClient({ url: redisUrl, queueName });
  });

  afterAll(async () => {
    await worker.worker.shutdown(0);
    await client.close();
  });

  it('serves the page and, with --board, Bull Board behind the operator token, until SIGTERM', async () => {
    const jobId = await client.enqueue({ prompt: 'tools 2' });
    await client.result(jobId, { timeoutMs: 30_000 });
    const server = serve(['--port', '0', '--board'], {
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      GATEWAY_OPERATOR_TOKEN: OPERATOR,
    });
    try {
      const url = await waitFor(
        'the listening line',
        () => /listening at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(server.stderr())?.[1],
      );
      const page = await get(url);
      expect(page.status).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.body).toContain('<h2 id="jobs-heading">Recent jobs</h2>');

      const refused = await get(`${url}board/`);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toBe('Basic realm="claudebox"');
      const basic = `Basic ${Buffer.from(`operator:${OPERATOR}`).toString('base64')}`;
      const board = await get(`${url}board/`, { headers: { authorization: basic } });
      expect(board.status).toBe(200);
      expect(board.body).toContain('<title>Bull Dashboard</title>');
      // What Bull Board's Logs tab shows for the job: the attempt in brief.
      const logs = await get(`${url}board/api/queues/${queueName}/${jobId}/logs`, {
        headers: { authorization: basic },
      });
      expect(JSON.parse(logs.body)).toEqual([
        expect.stringMatching(/^attempt 1 started: pid \d+, session /),
        'tool call: Bash',
        'tool call: Read',
        expect.stringMatching(/^attempt 1 completed in /),
      ]);
    } finally {
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
  });

  it.each([
    [{}, 1, 'set GATEWAY_OPERATOR_TOKEN or GATEWAY_SECRET'],
    [{ GATEWAY_SECRET: 'short' }, 1, 'GATEWAY_SECRET: must be at least 32 characters'],
    [
      { GATEWAY_OPERATOR_TOKEN: OPERATOR, GATEWAY_PORT: 'x' },
      1,
      'GATEWAY_PORT="x": must be a number',
    ],
    [{ GATEWAY_SECRET: 'a'.repeat(32) }, 2, '--board needs GATEWAY_OPERATOR_TOKEN'],
  ])('refuses to start with %j, naming the problem', async (settings, code, message) => {
    const server = serve(['--port', '0', '--board'], { REDIS_URL: redisUrl, ...settings });
    expect(await server.exited).toBe(code);
    expect(server.stderr()).toContain(message);
    expect(server.stderr()).not.toContain('a'.repeat(32));
  });

  it('refuses an empty --host, which would listen on every interface, as a bad option', async () => {
    const server = serve(['--port', '0', '--host', ' '], {
      REDIS_URL: redisUrl,
      GATEWAY_OPERATOR_TOKEN: OPERATOR,
    });
    expect(await server.exited).toBe(2);
    expect(server.stderr()).toContain('--host: must not be empty');
  });
});
