import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConfigError,
  loadConnectionConfig,
  redactUrl,
  type ConnectionConfig,
} from '../config/config.js';
import {
  createGateway,
  GatewaySettingsError,
  loadGatewaySettings,
  type Gateway,
  type GatewaySettings,
} from '../gateway/index.js';
import { errorMessage } from '../common/errors.js';
import { listen } from '../common/listen.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';
import { parseCount } from './options.js';
import { redisProblem } from './redis-probe.js';

export interface ServeOptions {
  readonly port?: string;
  readonly host?: string;
  readonly board?: boolean;
}

/**
 * `claudebox serve`: the HTTP gateway (events as SSE, job state, the live page, optionally
 * Bull Board) until SIGTERM or SIGINT. Resolves with the exit code.
 */
export async function runServeCommand(
  options: ServeOptions,
  io: Pick<CliIo, 'env' | 'stderr'>,
): Promise<number> {
  const { config, settings } = readSettings(options, io.env);
  if (options.board === true && settings.GATEWAY_OPERATOR_TOKEN === undefined) {
    throw new CliError(
      EXIT.usage,
      '--board needs GATEWAY_OPERATOR_TOKEN: the board can change the queue',
    );
  }
  const problem = await redisProblem(config.REDIS_URL);
  if (problem !== null) throw new CliError(EXIT.failed, problem);
  const gateway = createGateway({
    url: config.REDIS_URL,
    queueName: config.QUEUE_NAME,
    prefix: config.QUEUE_PREFIX,
    pubsub: config.EVENTS_PUBSUB,
    ...(settings.GATEWAY_SECRET === undefined ? {} : { secret: settings.GATEWAY_SECRET }),
    ...(settings.GATEWAY_OPERATOR_TOKEN === undefined
      ? {}
      : { operatorToken: settings.GATEWAY_OPERATOR_TOKEN }),
    board: options.board === true,
    slowClientMs: settings.GATEWAY_SLOW_CLIENT_SECONDS * 1000,
    maxStreams: settings.GATEWAY_MAX_STREAMS,
    maxHeldBytes: settings.GATEWAY_MAX_HELD_BYTES,
  });
  const server = createServer(gateway.handler);
  try {
    await listen(server, settings.GATEWAY_PORT, settings.GATEWAY_HOST);
  } catch (error) {
    await gateway.close();
    const where = `${settings.GATEWAY_HOST}:${settings.GATEWAY_PORT}`;
    throw new CliError(
      EXIT.failed,
      `GATEWAY_HOST and GATEWAY_PORT (or --host and --port): cannot listen on ${where}: ${errorMessage(error)}`,
    );
  }
  const url = `http://${hostForUrl(settings.GATEWAY_HOST)}:${(server.address() as AddressInfo).port}/`;
  const board = options.board === true ? `, Bull Board at ${url}board` : '';
  io.stderr(
    `claudebox: gateway for queue ${config.QUEUE_NAME} on ${redactUrl(config.REDIS_URL)} listening at ${url}${board}\n`,
  );
  await untilSignal();
  await stop(server, gateway);
  return EXIT.ok;
}

/**
 * --host as GATEWAY_HOST is read: an empty one would listen on every interface, not on the
 * loopback the default keeps it to.
 */
function parseHost(value: string): string {
  const host = value.trim();
  if (host === '') throw new CliError(EXIT.usage, '--host: must not be empty');
  return host;
}

/** The worker's Redis and queue settings, the gateway's own, and the flags over them. */
function readSettings(
  options: ServeOptions,
  env: Readonly<Record<string, string | undefined>>,
): { config: ConnectionConfig; settings: GatewaySettings } {
  try {
    const config = loadConnectionConfig(env);
    const settings = loadGatewaySettings(env);
    return {
      config,
      settings: {
        ...settings,
        ...(options.port === undefined ? {} : { GATEWAY_PORT: parsePort(options.port) }),
        ...(options.host === undefined ? {} : { GATEWAY_HOST: parseHost(options.host) }),
      },
    };
  } catch (error) {
    if (error instanceof ConfigError || error instanceof GatewaySettingsError) {
      throw new CliError(EXIT.failed, error.message);
    }
    throw error;
  }
}

function parsePort(value: string): number {
  const port = parseCount('--port', value, 0);
  if (port > 65535) throw new CliError(EXIT.usage, '--port: must be at most 65535');
  return port;
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
}

async function stop(server: Server, gateway: Gateway): Promise<void> {
  const closed = new Promise((resolve) => server.close(resolve));
  // Event streams would hold the server open for as long as their runs last.
  await gateway.close();
  server.closeAllConnections();
  await closed;
}
