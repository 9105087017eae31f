import { describe, expect, it } from 'vitest';
import { startTracing } from '../../../../src/worker/runtime/tracing.js';

describe('startTracing', () => {
  it('makes no tracer at all when neither an OTLP endpoint nor an exporter is given', async () => {
    expect(
      await startTracing({ serviceName: 'claudebox', workerId: 'w', queueName: 'q' }),
    ).toBeNull();
  });

  it('traces when an OTLP endpoint is given', async () => {
    const tracing = await startTracing({
      endpoint: 'http://127.0.0.1:4318',
      serviceName: 'claudebox',
      workerId: 'w',
      queueName: 'q',
    });
    expect(tracing).not.toBeNull();
    await tracing?.shutdown();
  });
});
