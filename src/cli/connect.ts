import { Redis } from 'ioredis';
import { createClient, type ClaudeboxClient } from '../client/index.js';
import { ConfigError, loadConfig, redactUrl } from '../config/config.js';
import type { QueueAddress } from '../contract/index.js';
import { probeRedis, watchConnection } from '../redis/connections.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

const REDIS_PROBE_MS = 4000;
const CLOSE_MS = 2000;

export interface Connection {
  readonly client: ClaudeboxClient;
  readonly address: QueueAddress;
  close(): Promise<void>;
}

/**
 * The client for the queue the environment names (the worker's own variables). Redis is probed
 * first: the client's connection waits through outages, which would make a wrong REDIS_URL
 * look like a command that hangs.
 */
export async function connect(io: Pick<CliIo, 'env' | 'stderr'>): Promise<Connection> {
  let config;
  try {
    config = loadConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(EXIT.failed, error.message);
    throw error;
  }
  const where = redactUrl(config.REDIS_URL);
  const unreachable = await probeRedis(config.REDIS_URL, REDIS_PROBE_MS);
  if (unreachable !== null) {
    throw new CliError(EXIT.failed, `cannot reach Redis at ${where} (REDIS_URL): ${unreachable}`);
  }

  const address: QueueAddress = { prefix: config.QUEUE_PREFIX, queueName: config.QUEUE_NAME };
  const redis = new Redis(config.REDIS_URL, {
    maxRetriesPerRequest: null,
    connectionName: 'claudebox:cli',
  });
  // Commands wait for Redis meanwhile.
  watchConnection(redis, {
    lost: (error) => {
      io.stderr(
        `claudebox: lost the connection to Redis at ${where} (${error.message}); retrying\n`,
      );
    },
  });
  const client = createClient({ connection: redis, ...address });
  return {
    client,
    address,
    close: async () => {
      // A polite goodbye waits for Redis; during an outage that could be forever.
      let timer: NodeJS.Timeout | undefined;
      const politely = async (): Promise<void> => {
        await client.close();
        await redis.quit();
      };
      await Promise.race([
        politely().catch(() => undefined),
        new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_MS))),
      ]);
      clearTimeout(timer);
      redis.disconnect();
    },
  };
}
