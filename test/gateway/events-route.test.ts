import { request, type IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
import { get, parseSse, startTestGateway, type TestGateway } from '../support/sse.js';
import {
  collectEvents,
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-tests';
const auth = { authorization: `Bearer ${OPERATOR}` };

describe('GET /jobs/:id/events (Server-Sent Events)', () => {
  let queueName: string;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let redis: Redis;

  beforeAll(async () => {
    queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-dispatch.mjs'),
      env: { CONCURRENCY: '3' },
    });
    client = createClient({ url: redisUrl, queueName });
    gateway = await startTestGateway({
      url: redisUrl,
      queueName,
      operatorToken: OPERATOR,
      slowClientMs: 1000,
    });
    redis = new Redis(redisUrl);
  });

  afterAll(async () => {
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
    await redis.quit();
  });

  const eventsUrl = (jobId: string): string => `${gateway.url}/jobs/${jobId}/events`;
  const replay = (jobId: string): Promise<ExecuteEvent[]> =>
    collectEvents(client.events(jobId, { follow: false }));
  const numsub = async (jobId: string): Promise<number> => {
    const reply = await redis.pubsub('NUMSUB', `bull:${queueName}:events:${jobId}`);
    return Number(reply[1]);
  };

  it('streams a run live: id is the seq, event the type, data the event; it ends after the final terminal event', async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 2' });
    const response = await get(eventsUrl(jobId), { headers: auth });

    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = response.messages.filter((m) => m.event !== 'end');
    const history = await replay(jobId);
    expect(events.map((m) => m.id)).toEqual(history.map((e) => String(e.seq)));
    expect(events.map((m) => m.event)).toEqual(history.map((e) => e.type));
    expect(events.map((m) => JSON.parse(m.data))).toEqual(history);
    expect(history.at(-1)).toMatchObject({ type: 'completed', data: { retrying: false } });
    expect(response.messages.at(-1)).toEqual({ id: undefined, event: 'end', data: '{}' });
  });

  it('resumes exactly after Last-Event-ID, mid-run and after the end', async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 3' });
    const first = await get(eventsUrl(jobId), {
      headers: auth,
      until: (messages) => messages.length >= 3,
    });
    const seen = first.messages.slice(0, 3);
    const rest = await get(eventsUrl(jobId), {
      headers: { ...auth, 'last-event-id': String(seen.at(-1)?.id) },
    });
    const seqs = [...seen, ...rest.messages].flatMap((m) => (m.id ? [Number(m.id)] : []));
    const history = await replay(jobId);

    expect(seqs).toEqual(history.map((e) => e.seq));
    const middle = await get(eventsUrl(jobId), { headers: { ...auth, 'last-event-id': '2' } });
    expect(middle.messages.flatMap((m) => (m.id ? [Number(m.id)] : []))).toEqual(
      history.slice(2).map((e) => e.seq),
    );
  });

  it("answers a HEAD of a running job's stream with its headers at once, not at the run's end", async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 3' });
    const head = await new Promise<{ status: number; type: string }>((resolve, reject) => {
      request(eventsUrl(jobId), { method: 'HEAD', headers: auth }, (res) => {
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) });
        res.resume();
      })
        .on('error', reject)
        .end();
    });
    expect(head).toEqual({ status: 200, type: 'text/event-stream; charset=utf-8' });
    // Answered while the run went on: no terminal event yet.
    const sofar = await collectEvents(client.events(jobId, { follow: false }));
    expect(sofar.filter((e) => e.type === 'completed' || e.type === 'failed')).toEqual([]);
  });

  it('answers 204 to a reconnection after the final event, so EventSource stops', async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 0.2' });
    await client.result(jobId, { timeoutMs: 30_000 });
    const last = (await replay(jobId)).at(-1)?.seq ?? 0;

    const again = await get(eventsUrl(jobId), {
      headers: { ...auth, 'last-event-id': String(last) },
    });
    expect(again.status).toBe(204);
    expect(again.body).toBe('');
  });

  it('streams on after the final event where the job was retried by hand since', async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 0.2' });
    await client.result(jobId, { timeoutMs: 30_000 });
    const first = await replay(jobId);
    const queue = createQueue(redisUrl, queueName);
    let reconnecting: ReturnType<typeof get>;
    try {
      // The retry waits, its history still ending with the earlier final event, until the
      // reconnection is being served.
      await queue.pause();
      await (await queue.getJob(jobId))?.retry('completed');
      reconnecting = get(eventsUrl(jobId), {
        headers: { ...auth, 'last-event-id': String(first.at(-1)?.seq) },
      });
      await waitFor('the reconnection to follow the job', async () =>
        (await numsub(jobId)) > 0 ? true : undefined,
      );
    } finally {
      await queue.resume();
      await queue.close();
    }
    const again = await reconnecting;
    expect(again.status).toBe(200);
    const events = again.messages.filter((m) => m.event !== 'end');
    expect(events.map((m) => m.id)).toEqual(
      (await replay(jobId)).slice(first.length).map((e) => String(e.seq)),
    );
    expect(events.map((m) => m.event)).toEqual(expect.arrayContaining(['started', 'completed']));
    expect(JSON.parse(events.at(-1)?.data ?? '{}')).toMatchObject({ attempt: 2 });
    expect(again.messages.at(-1)?.event).toBe('end');
  });

  it('serves many watchers of one job with one Redis subscription', async () => {
    const jobId = await client.enqueue({ prompt: 'slow: sleep 3' });
    const received = Array.from({ length: 5 }, () => 0);
    const watchers = received.map((_, i) =>
      get(eventsUrl(jobId), {
        headers: auth,
        onMessages: (messages) => (received[i] = messages.length),
      }),
    );
    // Each watcher subscribes before its first event goes out.
    await waitFor('every watcher to get an event', () =>
      received.every((count) => count > 0) ? true : undefined,
    );
    // While all five follow the run live, Redis counts one subscriber.
    const whileLive = await numsub(jobId);
    const responses = await Promise.all(watchers);

    expect(whileLive).toBe(1);
    const history = (await replay(jobId)).map((e) => String(e.seq));
    for (const response of responses) {
      expect(response.messages.flatMap((m) => (m.id ? [m.id] : []))).toEqual(history);
    }
    expect(await numsub(jobId)).toBe(0);
  });

  it('cuts off a client that stops reading, which then resumes with Last-Event-ID', async () => {
    // About 8 MB a second for 15 s: far more than the sockets between them can hold.
    const jobId = await client.enqueue({ prompt: 'chatty 15s 20x40000' });
    let body = '';
    let closedAt: number | null = null;
    const req = request(eventsUrl(jobId), { headers: auth }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.pause(); // it reads nothing more
    });
    req.on('close', () => (closedAt = Date.now()));
    req.on('error', () => undefined);
    req.end();
    const started = Date.now();
    // The server gave up on it: its live subscription is gone while the run goes on.
    await waitFor('the server to cut the client off', async () =>
      Date.now() - started > 500 && (await numsub(jobId)) === 0 ? true : undefined,
    );
    expect(await client.result(jobId, { timeoutMs: 1 }).catch(() => 'running')).toBe('running');
    await client.cancel(jobId);
    req.destroy();
    await waitFor('the request to close', () => (closedAt === null ? undefined : true));

    const got = parseSse(body).flatMap((m) => (m.id ? [Number(m.id)] : []));
    const rest = await get(eventsUrl(jobId), {
      headers: { ...auth, 'last-event-id': String(got.at(-1) ?? 0) },
    });
    const seqs = [...got, ...rest.messages.flatMap((m) => (m.id ? [Number(m.id)] : []))];
    const history = await replay(jobId);
    expect(seqs).toEqual(history.map((e) => e.seq));
    expect(history.at(-1)).toMatchObject({ type: 'failed', data: { failure: 'cancelled' } });
  });

  it('keeps a client that reads an event longer than its socket holds slowly, but steadily', async () => {
    // 7 MiB of \x01 in a line: an event of about 44 MB as JSON, far more than the sockets
    // between them hold.
    const jobId = await client.enqueue({ prompt: 'long line of control characters' });
    await client.result(jobId, { timeoutMs: 30_000 });
    // Room for a busy machine: the client is seen reading within a second; the whole event takes 7.
    const patient = await startTestGateway({
      url: redisUrl,
      queueName,
      operatorToken: OPERATOR,
      slowClientMs: 3000,
    });
    let received = 0;
    let tail = '';
    const ended = new Promise<void>((resolve) => {
      const req = request(`${patient.url}/jobs/${jobId}/events`, { headers: auth }, (res) => {
        res.setEncoding('utf8');
        res.pause();
        const take = (chunk: string | null): void => {
          received += chunk?.length ?? 0;
          tail = (tail + (chunk ?? '')).slice(-1000);
        };
        // About 6 MB a second for 5 s, then all it can. The server's socket tells it of room
        // only once half of what it holds (up to 4 MB) was read: a piece at a time, that is
        // well within GATEWAY_SLOW_CLIENT_SECONDS (3 here); the whole event, far past it.
        const reading = setInterval(() => take(res.read(320 * 1024) as string | null), 50);
        setTimeout(() => {
          clearInterval(reading);
          res.on('data', take);
          res.resume();
        }, 5000);
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('error', () => resolve());
      req.end();
    });
    await ended;
    await patient.close();
    // Every event, the last (its result) among them, then the end of the stream.
    const events = await replay(jobId);
    const bytes = events.reduce((sum, event) => sum + JSON.stringify(event).length, 0);
    expect(received).toBeGreaterThan(bytes);
    expect(tail).toMatch(/"lastSeq":\d+\}\}\n\nevent: end\ndata: \{\}\n\n$/);
  });

  it('holds at most maxHeldBytes of long events for all its streams: another stream of one is cut off while one holds a long event, and served once it is taken; short events go on', async () => {
    // An event of about 44 MB as JSON: far more than the sockets hold.
    const jobId = await client.enqueue({ prompt: 'long line of control characters' });
    await client.result(jobId, { timeoutMs: 30_000 });
    const small = await startTestGateway({
      url: redisUrl,
      queueName,
      operatorToken: OPERATOR,
      slowClientMs: 3_600_000,
      maxHeldBytes: 1024 * 1024,
    });
    try {
      // A client that stops reading once the long event began: its stream holds the event.
      let stalled: IncomingMessage | undefined;
      await new Promise<void>((resolve, reject) => {
        const req = request(`${small.url}/jobs/${jobId}/events`, { headers: auth }, (res) => {
          stalled = res;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (!chunk.includes('\\u0001')) return;
            res.pause();
            resolve();
          });
        });
        req.on('error', reject);
        req.end();
      });
      // Another stream of a long event meanwhile: given the short events before it, then
      // disconnected at the long one, to come back with Last-Event-ID.
      const cut = await readStream(`${small.url}/jobs/${jobId}/events`);
      expect(cut.ended).toBe(false);
      expect(cut.events).toBeGreaterThan(0);
      expect(cut.bytes).toBeLessThan(1024 * 1024);
      // A job of short events is served whole meanwhile: the bound is for long ones alone.
      const other = await client.enqueue({ prompt: 'slow: sleep 0.1' });
      await client.result(other, { timeoutMs: 30_000 });
      expect(await readStream(`${small.url}/jobs/${other}/events`)).toMatchObject({ ended: true });

      stalled?.destroy();
      const whole = await readStream(`${small.url}/jobs/${jobId}/events`);
      expect(whole.ended).toBe(true);
      expect(whole.bytes).toBeGreaterThan(6 * 7 * 1024 * 1024);
    } finally {
      await small.close();
    }
  });

  /** Reads an event stream to its end: how much came, and whether it ended with `end`. */
  function readStream(url: string): Promise<{ bytes: number; ended: boolean; events: number }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: auth }, (res) => {
        let bytes = 0;
        let tail = '';
        let events = 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          bytes += chunk.length;
          // Each event begins with its id, after the blank line ending the one before.
          events += (tail.slice(-5) + chunk).split('\n\nid: ').length - 1;
          tail = (tail + chunk).slice(-100);
        });
        const done = (): void =>
          resolve({ bytes, events, ended: tail.endsWith('event: end\ndata: {}\n\n') });
        res.on('end', done);
        res.on('error', done);
        res.on('aborted', done);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('answers 404 for a job that does not exist, and 400 for a Last-Event-ID that is no seq', async () => {
    const missing = await get(eventsUrl('no-such-job'), { headers: auth });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toEqual({
      error: `job no-such-job not found in queue ${queueName}`,
    });
    const jobId = await client.enqueue({ prompt: 'slow: sleep 0.1' });
    await client.result(jobId, { timeoutMs: 30_000 });
    // Names of the queue's own keys, which exist once a job ran, are no jobs either.
    for (const name of ['events', 'meta', 'id', `${jobId}:logs`, `history:${jobId}`]) {
      expect((await get(eventsUrl(name), { headers: auth })).status).toBe(404);
      expect((await get(`${gateway.url}/jobs/${name}`, { headers: auth })).status).toBe(404);
    }
    const bad = await get(eventsUrl(jobId), { headers: { ...auth, 'last-event-id': 'abc' } });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error).toContain('Last-Event-ID');
  });
});
