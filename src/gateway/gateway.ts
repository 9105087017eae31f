import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Queue } from 'bullmq';
import { Hono, type Context } from 'hono';
import { createClient, type ClaudeboxClient } from '../client/index.js';
import { openQueue, type QueueTarget } from '../client/queue-connection.js';
import { MIN_READ_TOKEN_SECRET_LENGTH, type QueueAddress } from '../contract/index.js';
import { errorMessage } from '../common/errors.js';
import type { RedisClient } from '../redis/connections.js';
import { requireAccess, type AuthSettings } from './auth.js';
import { boardApp } from './board.js';
import { listJobs, parseListQuery, readJob } from './jobs.js';
import { addPage } from './page.js';
import { SSE_HEADERS, streamEvents, streamStart, type StreamLimits } from './sse.js';
import { HeldBytes } from './held-bytes.js';

/** The queue (a connection, not closed by `close()`, or a URL), and who may read what. */
export interface GatewayOptions extends QueueTarget {
  /** The key of read tokens (at least 32 characters); without it only the operator token reads. */
  readonly secret?: string;
  /** The token that reads everything and opens the board. */
  readonly operatorToken?: string;
  /** Mount Bull Board at `/board` (needs the operator token). */
  readonly board?: boolean;
  /** Where the gateway is mounted in a larger server, e.g. "/claudebox". Default "/". */
  readonly basePath?: string;
  /** How long a client may leave an event stream unread before it is cut off (default 30 s). */
  readonly slowClientMs?: number;
  /** How often a quiet event stream gets a keep-alive comment (default 15 s). */
  readonly heartbeatMs?: number;
  /** Event streams open at once; one more is answered 503 (default 1,000). */
  readonly maxStreams?: number;
  /**
   * What all event streams may hold at once of long events (over 64 Ki characters) being written
   * out, in bytes (a byte a character); a stream whose long event does not fit is cut off to come
   * back later (default 256 MiB).
   */
  readonly maxHeldBytes?: number;
}

export interface Gateway {
  /** The Hono app, for a control plane that serves Hono itself (under @hono/node-server). */
  readonly app: Hono<{ Bindings: HttpBindings }>;
  /** The same as a Node.js request listener: `http.createServer(gateway.handler)`. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Ends the open event streams and lets go of Redis. */
  close(): Promise<void>;
}

/** Everything the routes share. */
interface Parts {
  /** For a request's answer: its commands fail while Redis is away. */
  readonly redis: RedisClient;
  readonly queue: Queue;
  readonly client: ClaudeboxClient;
  readonly address: QueueAddress;
  readonly auth: AuthSettings;
  readonly limits: StreamLimits;
  readonly streams: Set<ServerResponse>;
  readonly maxStreams: number;
}

/** Event streams a gateway keeps open at once unless told otherwise. */
export const DEFAULT_MAX_STREAMS = 1000;
/** What a gateway's streams hold at once of events being written, unless told otherwise. */
export const DEFAULT_MAX_HELD_BYTES = 256 * 1024 * 1024;

/** Reconnections a request's Redis command waits through (a few seconds) before it fails. */
const REDIS_RETRIES_PER_REQUEST = 3;

/**
 * The HTTP gateway: a job's events as Server-Sent Events, its state and result, the list of
 * recent jobs, the live page, and optionally Bull Board, each behind a token.
 */
export function createGateway(options: GatewayOptions = {}): Gateway {
  checkOptions(options);
  // Redis trouble shows in the answers (500s) within a few reconnections, rather than holding
  // every request (and its socket) until Redis is back; ioredis reconnects by itself meanwhile.
  const connection = openQueue(options, () => undefined, REDIS_RETRIES_PER_REQUEST);
  // An open event stream waits for Redis instead, as the client does: a stream that ended is
  // not opened again by the live page, and a browser gives up on one answered 500.
  const streaming = openQueue(options, () => undefined);
  const { address, redis, queue } = connection;
  const parts: Parts = {
    redis,
    queue,
    client: createClient({
      connection: streaming.redis,
      ...address,
      ...(options.pubsub === undefined ? {} : { pubsub: options.pubsub }),
    }),
    address,
    auth: {
      operatorToken: options.operatorToken,
      secret: options.secret,
      queueName: address.queueName,
      now: Date.now,
    },
    limits: {
      slowClientMs: options.slowClientMs ?? 30_000,
      heartbeatMs: options.heartbeatMs ?? 15_000,
      held: new HeldBytes(options.maxHeldBytes ?? DEFAULT_MAX_HELD_BYTES),
    },
    streams: new Set(),
    maxStreams: options.maxStreams ?? DEFAULT_MAX_STREAMS,
  };
  const app = buildApp(parts, options);
  const listener = getRequestListener(app.fetch);
  return {
    app,
    handler: (req, res) => {
      void listener(req, res);
    },
    close: async () => {
      parts.streams.forEach((res) => res.destroy());
      await parts.client.close();
      await connection.close();
      await streaming.close();
    },
  };
}

function checkOptions(options: GatewayOptions): void {
  if (options.secret !== undefined && options.secret.length < MIN_READ_TOKEN_SECRET_LENGTH) {
    throw new TypeError(`secret: must be at least ${MIN_READ_TOKEN_SECRET_LENGTH} characters`);
  }
  if (options.operatorToken === '') throw new TypeError('operatorToken: must not be empty');
  for (const [name, unit] of [
    ['maxStreams', 'streams'],
    ['maxHeldBytes', 'bytes'],
  ] as const) {
    const value = options[name];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1)) {
      throw new TypeError(`${name}: must be a whole number of ${unit}, at least 1`);
    }
  }
  if (options.board === true && options.operatorToken === undefined) {
    throw new TypeError('board: needs an operatorToken (Bull Board can change the queue)');
  }
  for (const name of ['slowClientMs', 'heartbeatMs'] as const) {
    const ms = options[name];
    // A timer's delay outside 1..2^31 - 1 ms is taken as 1 ms by Node.js.
    if (ms !== undefined && !(Number.isFinite(ms) && ms >= 1 && ms <= MAX_TIMER_MS)) {
      throw new TypeError(`${name}: must be a number of milliseconds from 1 to ${MAX_TIMER_MS}`);
    }
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function buildApp(parts: Parts, options: GatewayOptions): Hono<{ Bindings: HttpBindings }> {
  // "claudebox" is taken for "/claudebox": a path without its slash would match no request.
  const basePath = `/${options.basePath ?? ''}`.replace(/^\/+/, '/').replace(/\/+$/, '');
  const app = new Hono<{ Bindings: HttpBindings }>({ strict: false });
  addPage(app);
  const operator = requireAccess(parts.auth, () => ({ operator: true }));
  const jobReader = requireAccess(parts.auth, (c) => ({ jobId: c.req.param('id') ?? '' }));
  app.get('/jobs', operator, (c) => jobsRoute(c, parts));
  app.get('/jobs/:id', jobReader, (c) => jobRoute(c, parts));
  app.get('/jobs/:id/events', jobReader, (c) => eventsRoute(c, parts));
  if (options.board === true) {
    const board = requireAccess(parts.auth, () => ({ operator: true }), 'Basic realm="claudebox"');
    app.use('/board', board);
    app.use('/board/*', board);
    app.route('/board', boardApp(parts.queue, `${basePath}/board`));
  }
  // /board/ and /board alike (Bull Board links to both).
  const root = new Hono<{ Bindings: HttpBindings }>({ strict: false });
  root.onError((error, c) => c.json({ error: `the gateway failed: ${errorMessage(error)}` }, 500));
  root.notFound((c) => c.json({ error: `no such route: ${c.req.method} ${c.req.path}` }, 404));
  if (basePath !== '') {
    // The page's links are relative: at the mount without its slash they would leave it.
    root.use(basePath, async (c, next) => {
      // Not c.req.path, which a router that ignores trailing slashes gives without it.
      const url = new URL(c.req.url);
      if (url.pathname !== basePath) return next();
      return c.redirect(`${basePath}/${url.search}`, 308);
    });
  }
  root.route(basePath || '/', app);
  return root;
}

async function jobsRoute(c: Context, parts: Parts): Promise<Response> {
  const query = parseListQuery(c.req.queries());
  if (typeof query === 'string') return c.json({ error: query }, 400);
  return c.json(await listJobs(parts.queue, parts.redis, query));
}

async function jobRoute(c: Context, parts: Parts): Promise<Response> {
  const jobId = c.req.param('id') ?? '';
  const job = await readJob(parts.queue, jobId);
  if (job === null) return c.json({ error: notFound(jobId, parts) }, 404);
  return c.json(job);
}

async function eventsRoute(
  c: Context<{ Bindings: HttpBindings }>,
  parts: Parts,
): Promise<Response> {
  const jobId = c.req.param('id') ?? '';
  const lastEventId = c.req.header('last-event-id') ?? '0';
  if (!/^\d{1,15}$/.test(lastEventId)) {
    return c.json({ error: 'Last-Event-ID: must be the seq of an event' }, 400);
  }
  const fromSeq = Number(lastEventId) + 1;
  // On the request's connection: while Redis is away, a 500 rather than a request left waiting.
  const start = await streamStart(parts.redis, parts.queue, parts.address, jobId, fromSeq);
  if (start === 'unknown') return c.json({ error: notFound(jobId, parts) }, 404);
  // The client has every event up to the final one: 204 tells EventSource not to come back.
  if (start === 'over') return c.body(null, 204);
  // Node.js sends a HEAD's headers only once the response ends, which a stream does with the run.
  if (c.req.method === 'HEAD') return c.body(null, 200, SSE_HEADERS);
  // Each stream holds what its client has not read yet: their number bounds the gateway's memory.
  if (parts.streams.size >= parts.maxStreams) {
    const error = `too many event streams open (${parts.maxStreams}): try again later`;
    return c.json({ error }, 503, { 'retry-after': String(STREAMS_FULL_RETRY_SECONDS) });
  }
  const res = c.env.outgoing;
  parts.streams.add(res);
  try {
    await streamEvents(res, parts.client, jobId, fromSeq, parts.limits);
  } finally {
    parts.streams.delete(res);
  }
  return RESPONSE_ALREADY_SENT;
}

/** When a client turned away by a full gateway may try again. */
const STREAMS_FULL_RETRY_SECONDS = 5;

function notFound(jobId: string, parts: Parts): string {
  return `job ${jobId} not found in queue ${parts.address.queueName}`;
}
