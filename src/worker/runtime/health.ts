import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { errorMessage } from '../../common/errors.js';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, boolean | string>;
  /** How runs are isolated: an operator sees at a glance when they are not. */
  readonly isolation?: unknown;
}

export interface HealthOptions {
  readonly port: number;
  readonly host: string;
  readonly readiness: () => Promise<Readiness>;
  readonly metrics: Registry;
  /** More metrics in the Prometheus text format (BullMQ's queue counts). */
  readonly extraMetrics?: () => Promise<string>;
}

/**
 * `/healthz`: the process is alive. `/readyz`: it can do its work (Redis answers and the
 * worker is consuming). `/metrics`: Prometheus text. For orchestrators' probes and scrapers.
 */
export async function startHealthServer(options: HealthOptions): Promise<Server> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'application/json'): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    void (async () => {
      try {
        if (path === '/healthz') {
          reply(200, JSON.stringify({ status: 'ok' }));
        } else if (path === '/readyz') {
          const readiness = await options.readiness();
          reply(readiness.ready ? 200 : 503, JSON.stringify(readiness));
        } else if (path === '/metrics') {
          const own = await options.metrics.metrics();
          const extra = options.extraMetrics ? await options.extraMetrics() : '';
          reply(200, `${own}\n${extra}`, options.metrics.contentType);
        } else {
          reply(404, JSON.stringify({ error: `no such endpoint: ${path}` }));
        }
      } catch (error) {
        reply(500, JSON.stringify({ error: errorMessage(error) }));
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
