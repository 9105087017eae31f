import {
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Context,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * How a job carries its enqueuer's trace context: BullMQ's own place for it, the job option
 * `telemetry.metadata`, holding the W3C Trace Context headers as JSON
 * (`{"traceparent":"00-…"}`), as BullMQ's `bullmq-otel` writes it. W3C always, whatever
 * propagator an application registered, so that both ends agree.
 */
const w3c = new W3CTraceContextPropagator();

/** The active trace context (or `from`) as job metadata; undefined when no span is active. */
export function traceMetadata(from: Context = context.active()): string | undefined {
  const headers: Record<string, string> = {};
  w3c.inject(from, headers, defaultTextMapSetter);
  return headers.traceparent === undefined ? undefined : JSON.stringify(headers);
}

/** The context a job's metadata carries; the root context when it carries none it can read. */
export function contextOfMetadata(metadata: unknown): Context {
  if (typeof metadata !== 'string') return ROOT_CONTEXT;
  let headers: unknown;
  try {
    headers = JSON.parse(metadata);
  } catch {
    return ROOT_CONTEXT;
  }
  if (typeof headers !== 'object' || headers === null) return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
}
