import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { Queue } from 'bullmq';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('a job stopped while its workspace is fetched', () => {
  let server: Server;
  const sockets: Socket[] = [];
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let source: string;
  let queue: Queue;

  beforeEach(async () => {
    // A git host that takes the connection and never answers: the clone waits on it.
    server = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    source = `http://127.0.0.1:${port}/repo.git`;
    const queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-success.mjs'),
      env: {
        WORKSPACE_SOURCES: `http://127.0.0.1:${port}/`,
        WORKSPACE_STALL_SECONDS: '600',
        CONCURRENCY: '2',
      },
    });
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await client.close();
    await queue.close();
    sockets.forEach((socket) => socket.destroy());
    await new Promise((resolve) => server.close(resolve));
  });

  it('ends cancelled at once, not when git gives up on the source', async () => {
    const jobId = await client.enqueue({ prompt: 'hi', workspace: { source, ref: 'main' } });
    while (sockets.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await client.cancel(jobId, 'not needed any more');
    const result = await client.result(jobId, { timeoutMs: 20_000 });
    expect(result).toMatchObject({
      success: false,
      failure: 'cancelled',
      error: 'cancelled before it started: not needed any more',
    });
  });

  it("ends cancelled at once while it waits behind another job's clone of the same source", async () => {
    const cloning = await client.enqueue({ prompt: 'hi', workspace: { source, ref: 'main' } });
    while (sockets.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const waiting = await client.enqueue({ prompt: 'hi', workspace: { source, ref: 'main' } });
    // Taken by the worker's second slot, it waits for the first job's clone to end.
    await waitFor('the second job to be active', async () =>
      (await queue.getJobState(waiting)) === 'active' ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    await client.cancel(waiting, 'not needed any more');
    expect(await client.result(waiting, { timeoutMs: 20_000 })).toMatchObject({
      success: false,
      failure: 'cancelled',
      error: 'cancelled before it started: not needed any more',
    });
    expect(await queue.getJobState(cloning)).toBe('active');
    await client.cancel(cloning);
    expect(await client.result(cloning, { timeoutMs: 20_000 })).toMatchObject({
      failure: 'cancelled',
    });
  });
});
