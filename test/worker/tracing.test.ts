import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** The control plane's own tracing, registered as an application registers it. */
const controlPlaneSpans = new InMemorySpanExporter();
const controlPlane = new NodeTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(controlPlaneSpans)],
});

describe('traces of attempts', () => {
  // One per worker: a worker that stops shuts its exporter down.
  let workerSpans = new InMemorySpanExporter();
  let worker: TestWorker | undefined;
  let client: ClaudeboxClient | undefined;

  beforeAll(() => controlPlane.register());
  afterAll(() => controlPlane.shutdown());
  afterEach(async () => {
    await client?.close();
    await worker?.worker.shutdown(0);
    workerSpans = new InMemorySpanExporter();
  });

  const start = async (claude: string): Promise<ClaudeboxClient> => {
    const queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture(claude),
      spanExporter: workerSpans,
    });
    return (client = createClient({ url: redisUrl, queueName }));
  };
  const spansOf = (jobId: string): ReadableSpan[] =>
    workerSpans.getFinishedSpans().filter((span) => span.attributes['claudebox.job.id'] === jobId);

  it('has a span for the attempt, a child of the span the client enqueued in', async () => {
    const claudebox = await start('claude-success.mjs');
    const tracer = trace.getTracer('control-plane');
    const enqueuing = tracer.startSpan('handle request');
    const jobId = await context.with(trace.setSpan(context.active(), enqueuing), () =>
      claudebox.enqueue({ prompt: 'hello' }),
    );
    enqueuing.end();
    const result = await claudebox.result(jobId, { timeoutMs: 30_000 });

    const [span, ...more] = await waitFor('the span', () => {
      const spans = spansOf(jobId);
      return spans.length > 0 ? spans : undefined;
    });
    expect(more).toEqual([]);
    expect(span?.name).toBe('claudebox attempt');
    expect(span?.attributes).toMatchObject({
      'claudebox.job.id': jobId,
      'claudebox.attempt': 1,
      'claudebox.session.id': result.sessionId,
      'claudebox.outcome': 'completed',
      'claudebox.cost_usd': 0.0123,
      'claudebox.duration_ms': result.durationMs,
      'messaging.system': 'bullmq',
    });
    expect(span?.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span?.spanContext().traceId).toBe(enqueuing.spanContext().traceId);
    expect(span?.parentSpanContext?.spanId).toBe(enqueuing.spanContext().spanId);
  });

  it('has a span for each attempt of a failing job, each saying how it failed', async () => {
    const claudebox = await start('claude-api-error.mjs');
    const jobId = await claudebox.enqueue({ prompt: 'hello' }, { attempts: 2 });
    await claudebox.result(jobId, { timeoutMs: 30_000 }).catch(() => undefined);

    const spans = await waitFor('both spans', () => {
      const found = spansOf(jobId);
      return found.length === 2 ? found : undefined;
    });
    expect(spans.map((span) => span.attributes['claudebox.attempt']).sort()).toEqual([1, 2]);
    for (const span of spans) {
      expect(span.attributes).toMatchObject({
        'claudebox.outcome': 'failed',
        'claudebox.failure': 'cli-error',
        'claudebox.exit_code': 1,
      });
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      // Enqueued outside any span: a trace of its own.
      expect(span.parentSpanContext).toBeUndefined();
    }
  });
});

describe('traces sent over OTLP', () => {
  let worker: WorkerProcess | undefined;
  afterEach(async () => {
    if (worker && worker.child.exitCode === null) worker.child.kill('SIGKILL');
    await worker?.exited;
  });

  it('reach the collector at OTEL_EXPORTER_OTLP_ENDPOINT, sent at the latest when the worker stops', async () => {
    const received: { path: string; body: string }[] = [];
    const collector = createServer((request: IncomingMessage, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        received.push({ path: request.url ?? '', body });
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const queueName = uniqueQueueName();
    try {
      worker = spawnWorkerProcess({
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-success.mjs'),
        // A collector behind a path, with a query string (a tenant) of its own.
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/collector/?tenant=a`,
        OTEL_SERVICE_NAME: 'claudebox-under-test',
      });
      await worker.waitForLog('worker ready');
      const claudebox = createClient({ url: redisUrl, queueName });
      const jobId = await claudebox.enqueue({ prompt: 'hello' });
      await claudebox.result(jobId, { timeoutMs: 30_000 });
      await claudebox.close();
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);

      const sent = received.filter((request) => request.path === '/collector/v1/traces?tenant=a');
      expect(sent.length).toBeGreaterThan(0);
      const payload = sent.map((request) => request.body).join('\n');
      expect(payload).toContain('claudebox-under-test');
      expect(payload).toContain('claudebox attempt');
      expect(payload).toContain(jobId);
    } finally {
      collector.close();
    }
  });
});
