import { ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { contextOfMetadata, traceMetadata } from '../../../src/common/trace-context.js';

const spanContext = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
};

describe('trace context in job metadata', () => {
  it("is the W3C traceparent of the active span, as JSON (bullmq-otel's form)", () => {
    const active = trace.setSpanContext(ROOT_CONTEXT, spanContext);
    expect(traceMetadata(active)).toBe(
      JSON.stringify({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }),
    );
  });

  it('is nothing when no span is active', () => {
    expect(traceMetadata(ROOT_CONTEXT)).toBeUndefined();
  });

  it('reads back as the span that enqueued, as a remote parent', () => {
    const metadata = traceMetadata(trace.setSpanContext(ROOT_CONTEXT, spanContext));
    expect(trace.getSpanContext(contextOfMetadata(metadata))).toEqual({
      ...spanContext,
      isRemote: true,
    });
  });

  it.each([undefined, 42, 'not json', '"a string"', '{"traceparent":"garbage"}', 'null'])(
    'gives the root context for metadata it cannot read: %s',
    (metadata) => {
      expect(trace.getSpanContext(contextOfMetadata(metadata))).toBeUndefined();
    },
  );
});
