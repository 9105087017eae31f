import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import {
  sessionKey,
  type ExecuteEvent,
  type ExecuteResult,
  type StartedEvent,
} from '../../src/contract/index.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const MiB = 1024 * 1024;

const userLine = (text: string): string =>
  `${JSON.stringify({ type: 'user', message: { role: 'user', content: text } })}\n`;

describe('session transcripts that are huge, malformed or hostile', () => {
  const queueName = uniqueQueueName();
  const address = { prefix: 'bull', queueName };
  const redis = new Redis(redisUrl);
  let worker: TestWorker;
  let client: ClaudeboxClient;

  const run = async (
    ask: Record<string, unknown>,
    request: Record<string, unknown> = {},
    attempts = 1,
  ): Promise<{ events: ExecuteEvent[]; result: ExecuteResult }> => {
    const jobId = randomUUID();
    const workingDir = `job-${jobId}`;
    mkdirSync(join(worker.workDir, workingDir));
    await client.enqueue(
      { prompt: JSON.stringify(ask), workingDir, ...request },
      { jobId, attempts },
    );
    const events = await collectEvents(client.events(jobId));
    return { events, result: await client.result(jobId, { timeoutMs: 30_000 }) };
  };
  const startedOf = (events: ExecuteEvent[]): StartedEvent[] =>
    events.filter((event): event is StartedEvent => event.type === 'started');
  const probeOf = (
    events: ExecuteEvent[],
  ): { transcriptBytes: number | null; settings: boolean } => {
    const probe = events.find((e) => e.type === 'output' && e.content.includes('"probe"'));
    if (probe?.type !== 'output') throw new Error('no probe line');
    return JSON.parse(probe.content) as { transcriptBytes: number | null; settings: boolean };
  };
  /** Plants a session in Redis as anyone who can write to it could. */
  const plant = async (sessionId: string, meta: Record<string, string | number>, data: Buffer) => {
    const key = sessionKey(address, sessionId);
    await redis.hset(key, meta);
    await redis.set(`${key}:data`, data);
  };

  beforeAll(async () => {
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-transcript.mjs'),
      env: { CONCURRENCY: '2', SESSION_MAX_BYTES: String(8 * MiB) },
    });
    client = createClient({ url: redisUrl, queueName });
  });
  afterAll(async () => {
    await client.close();
    await worker.worker.shutdown(0);
    await redis.quit();
  });

  it('stops shipping a transcript grown past SESSION_MAX_BYTES (a 4 GiB sparse file), says so, and the retry starts a new session', async () => {
    const rssBefore = process.memoryUsage().rss;
    const { events, result } = await run({ sparseBytes: 4 * 1024 * MiB, once: true }, {}, 2);
    expect(result).toMatchObject({ success: true, attempt: 2 });
    const note = events.find((e) => e.type === 'error' && e.attempt === 1);
    expect(note?.type === 'error' && note.content).toMatch(
      /^claudebox: the session transcript grew past SESSION_MAX_BYTES \(8388608 bytes\): it is no longer saved, and a retry starts a new session$/,
    );
    const [first, second] = startedOf(events);
    expect(second?.data).toMatchObject({ resumed: false, prompt: 'original' });
    expect(second?.data.sessionNote).toMatch(
      /grew past SESSION_MAX_BYTES \(4294967296 bytes\) and was not kept/,
    );
    expect(second?.data.sessionId).not.toBe(first?.data.sessionId);
    const stored = await redis.hgetall(sessionKey(address, first?.data.sessionId ?? ''));
    expect(stored).toMatchObject({ oversized: '1' });
    // Never read: the worker's memory did not grow by anything like the file.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(512 * MiB);
  });

  it('looks for the prompt in a transcript with a 3 MiB line and no newline, and resumes it', async () => {
    const { events, result } = await run({ noNewlineBytes: 3 * MiB, once: true }, {}, 2);
    expect(result).toMatchObject({ success: true, attempt: 2, resumed: true });
    const [, second] = startedOf(events);
    expect(second?.data).toMatchObject({ resumed: true, prompt: 'continue' });
    expect(probeOf(events.filter((e) => e.attempt === 2)).transcriptBytes).toBeGreaterThan(3 * MiB);
  });

  it('refuses a gzip bomb stored in Redis, naming it, while another job completes', async () => {
    const sessionId = randomUUID();
    await plant(sessionId, { bytes: 100 }, gzipSync(Buffer.alloc(64 * MiB)));
    const other = run({ holdMs: 1500 });
    const { result } = await run({}, { resumeSessionId: sessionId });
    expect(result).toMatchObject({ success: false, failure: 'worker-error' });
    expect(result.error).toBe(
      `worker error: could not restore session ${sessionId}: it holds more than the 100 bytes recorded for it`,
    );
    expect((await other).result.success).toBe(true);
  });

  it('refuses a truncated stored transcript, naming it', async () => {
    const sessionId = randomUUID();
    const whole = gzipSync(userLine('hello'));
    await plant(
      sessionId,
      { bytes: userLine('hello').length },
      whole.subarray(0, whole.length - 8),
    );
    const { result } = await run({}, { resumeSessionId: sessionId });
    expect(result.error).toBe(
      `worker error: could not restore session ${sessionId}: unexpected end of file`,
    );
  });

  it('ignores any path stored with a session: the transcript goes where the worker says, nowhere else', async () => {
    for (const path of [`../../../../../../tmp/${randomUUID()}/evil.jsonl`, 'settings.json']) {
      const sessionId = randomUUID();
      const transcript = userLine('earlier turn');
      await plant(sessionId, { bytes: transcript.length, path }, gzipSync(transcript));
      const { events, result } = await run({}, { resumeSessionId: sessionId });
      expect(result.success).toBe(true);
      expect(probeOf(events)).toEqual({
        transcriptBytes: transcript.length,
        settings: false,
        type: 'probe',
        session_id: sessionId,
      });
      if (path.startsWith('..')) expect(existsSync(path.replaceAll('../', '/'))).toBe(false);
    }
  });

  it('says "session not found" for a session that expired or was never stored', async () => {
    const sessionId = randomUUID();
    const { result, events } = await run({}, { resumeSessionId: sessionId });
    expect(result).toMatchObject({ success: false, failure: 'session-not-found', retrying: false });
    expect(result.error).toBe(`session not found: ${sessionId} expired or was never stored`);
    expect(startedOf(events)).toEqual([]);
  });

  it('lets a job resume only sessions of its own sessionScope', async () => {
    const first = await run({}, { sessionScope: 'tenant-a' });
    const sessionId = first.result.sessionId ?? '';
    const other = await run({}, { sessionScope: 'tenant-b', resumeSessionId: sessionId });
    expect(other.result).toMatchObject({ failure: 'session-not-found' });
    expect(other.result.error).toBe(
      `session not found: ${sessionId} in scope tenant-b expired or was never stored`,
    );
    const unscoped = await run({}, { resumeSessionId: sessionId });
    expect(unscoped.result).toMatchObject({ failure: 'session-not-found' });
    const same = await run({}, { sessionScope: 'tenant-a', resumeSessionId: sessionId });
    expect(same.result).toMatchObject({ success: true, resumed: true, sessionId });
  });
});
