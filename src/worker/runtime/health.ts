import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { errorMessage } from '../../common/errors.js';
import { listen } from '../../common/listen.js';
import { DEFAULT_HEALTH_PORT } from '../../config/config.js';

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
  await listen(server, options.port, options.host);
  return server;
}

/**
 * The health server on HEALTH_PORT, or on the default port when it is unset. Workers that share
 * a host with the same settings all start: the default port gives way to a free one (the
 * `worker ready` line names it); a port that was asked for does not, since a scraper expects it.
 */
export async function serveHealth(
  setting: { readonly port: number | undefined; readonly host: string },
  endpoints: Omit<HealthOptions, 'port' | 'host'>,
  logger: Logger,
): Promise<Server | null> {
  if (setting.port === 0) return null;
  const { host } = setting;
  const port = setting.port ?? DEFAULT_HEALTH_PORT;
  try {
    return await startHealthServer({ ...endpoints, host, port });
  } catch (error) {
    if (setting.port === undefined && (error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      const server = await startHealthServer({ ...endpoints, host, port: 0 });
      logger.info(
        { taken: port, health: healthUrlOf(server) },
        `health port ${port} is taken (another worker on this host?): listening on a free port`,
      );
      return server;
    }
    throw new Error(
      `HEALTH_HOST=${host}, HEALTH_PORT=${port}: cannot listen there: ${errorMessage(error)}`,
    );
  }
}

/** Where the server answers, for logs and callers: a wildcard address as loopback. */
export function healthUrlOf(server: Server): string | null {
  const address = server.address();
  if (address === null || typeof address !== 'object') return null;
  const host = WILDCARD[address.address] ?? address.address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

const WILDCARD: Record<string, string> = { '0.0.0.0': '127.0.0.1', '::': '::1' };
