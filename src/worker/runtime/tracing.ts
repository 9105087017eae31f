import type { Tracing, TracingSettings } from './otel-tracing.js';

export type { Tracing, TracingSettings } from './otel-tracing.js';

/**
 * A span per attempt, when an OTLP endpoint or an exporter is given; else null. The
 * OpenTelemetry SDK (some 30 MB of a worker's memory) is loaded only then: a worker that is not
 * traced pays nothing for it.
 */
export async function startTracing(settings: TracingSettings): Promise<Tracing | null> {
  if (settings.exporter === undefined && !settings.endpoint) return null;
  const { otelTracing } = await import('./otel-tracing.js');
  return otelTracing(settings);
}
