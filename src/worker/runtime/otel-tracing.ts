import { SpanKind, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { errorMessage } from '../../common/errors.js';
import { contextOfMetadata } from '../../common/trace-context.js';
import type { ExecuteResult } from '../../contract/index.js';
import type { AttemptTrace, AttemptTracing } from '../attempt/attempt-trace.js';
import type { ExecuteJob } from '../attempt/context.js';

export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_ENDPOINT: spans go to `<endpoint>/v1/traces` (OTLP over HTTP, JSON). */
  readonly endpoint?: string | undefined;
  /** Where spans go instead (tests, or a program that embeds the worker). */
  readonly exporter?: SpanExporter | undefined;
  readonly serviceName: string;
  readonly workerId: string;
  readonly queueName: string;
}

export interface Tracing extends AttemptTracing {
  /** Sends the spans not sent yet, then stops. */
  shutdown(): Promise<void>;
}

/**
 * A span per attempt, exported over OTLP or to the given exporter (null with neither). Loaded
 * only by a worker that is traced: see startTracing.
 */
export function otelTracing(settings: TracingSettings): Tracing | null {
  const processor = settings.exporter
    ? new SimpleSpanProcessor(settings.exporter)
    : settings.endpoint
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(settings.endpoint) }))
      : null;
  if (processor === null) return null;
  // A provider of the worker's own, not the global one: the application embedding a worker
  // (or a test running several) keeps its own tracing as it is.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': settings.serviceName,
      'service.instance.id': settings.workerId,
    }),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('claudebox');
  return {
    begin: (job, attempt) => attemptTrace(tracer, job, attempt, settings.queueName),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * As the OTLP exporters read OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path appended to its path,
 * so that a query string (a collector's tenant, say) stays a query string.
 */
function tracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/traces`;
  return url.toString();
}

function attemptTrace(
  tracer: Tracer,
  job: ExecuteJob,
  attempt: number,
  queueName: string,
): AttemptTrace {
  const jobId = job.id ?? '';
  const span = tracer.startSpan(
    'claudebox attempt',
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'bullmq',
        'messaging.operation.type': 'process',
        'messaging.destination.name': queueName,
        'messaging.message.id': jobId,
        'claudebox.job.id': jobId,
        'claudebox.attempt': attempt,
      },
    },
    // The enqueuer's span, when the job carries its context: the attempt is part of its trace.
    contextOfMetadata(job.opts.telemetry?.metadata),
  );
  return {
    end(result, error) {
      if (result) recordResult(span, result);
      else {
        span.setAttribute('claudebox.outcome', 'lost');
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(error) });
      }
      span.end();
    },
  };
}

function recordResult(span: Span, result: ExecuteResult): void {
  span.setAttributes({
    'claudebox.outcome': result.success ? 'completed' : 'failed',
    'claudebox.duration_ms': result.durationMs,
    'claudebox.retrying': result.retrying,
    ...(result.failure === null ? {} : { 'claudebox.failure': result.failure }),
    ...(result.sessionId === null ? {} : { 'claudebox.session.id': result.sessionId }),
    ...(result.costUsd === null ? {} : { 'claudebox.cost_usd': result.costUsd }),
    ...(result.numTurns === null ? {} : { 'claudebox.num_turns': result.numTurns }),
    ...(result.exitCode === null ? {} : { 'claudebox.exit_code': result.exitCode }),
  });
  if (!result.success) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? result.failure ?? '' });
  }
}
