import { doneWithin } from '../common/time.js';
import { createClient, type ClaudeboxClient } from '../client/index.js';
import { ConfigError, loadConnectionConfig, redactIn, redactUrl } from '../config/config.js';
import type { QueueAddress } from '../contract/index.js';
import { connectRedis, watchConnection } from '../redis/connections.js';
import { redisProblem } from './redis-probe.js';
import { CliError, EXIT } from './exit-codes.js';
import type { CliIo } from './io.js';

const CLOSE_MS = 2000;

export interface Connection {
  readonly client: ClaudeboxClient;
  readonly address: QueueAddress;
  close(): Promise<void>;
}

/** The client for the queue the environment names (the worker's own variables). */
export async function connect(io: Pick<CliIo, 'env' | 'stderr'>): Promise<Connection> {
  let config;
  try {
    config = loadConnectionConfig(io.env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(EXIT.failed, error.message);
    throw error;
  }
  const where = redactUrl(config.REDIS_URL);
  const problem = await redisProblem(config.REDIS_URL);
  if (problem !== null) throw new CliError(EXIT.failed, problem);

  const address: QueueAddress = { prefix: config.QUEUE_PREFIX, queueName: config.QUEUE_NAME };
  const redis = connectRedis(config.REDIS_URL, {
    maxRetriesPerRequest: null,
    connectionName: 'claudebox:cli',
  });
  // Commands wait for Redis meanwhile.
  watchConnection(redis, {
    lost: (error) => {
      io.stderr(
        `claudebox: lost the connection to Redis at ${where} (${redactIn(error.message, config.REDIS_URL)}); retrying\n`,
      );
    },
  });
  const client = createClient({ connection: redis, ...address, pubsub: config.EVENTS_PUBSUB });
  return {
    client,
    address,
    close: async () => {
      // A polite goodbye waits for Redis; during an outage that could be forever.
      const politely = async (): Promise<void> => {
        await client.close();
        await redis.quit();
      };
      await doneWithin(politely(), CLOSE_MS);
      redis.disconnect();
    },
  };
}
