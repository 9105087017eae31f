import type { Worker } from 'bullmq';
import type { RedisClient } from '../../redis/connections.js';
import type { Isolation } from '../../isolation/index.js';
import { doneWithin, withTimeout } from '../../common/time.js';
import type { WorkerConnections } from '../../redis/connections.js';
import type { Readiness } from './health.js';
import { errorMessage } from '../../common/errors.js';
import { redactIn } from '../../config/config.js';

/** How often Redis is pinged in the background: every `/readyz` reads the last answer. */
export const REDIS_PROBE_INTERVAL_MS = 2000;
/** As long as the interval: a slow answer on a busy host is not taken for an absent Redis. */
const PING_TIMEOUT_MS = REDIS_PROBE_INTERVAL_MS;
/** How long `/readyz` waits for BullMQ's blocking connection of a worker that just started. */
const BLOCKING_WAIT_MS = 1000;

export interface ReadinessWatch {
  /** `/readyz`'s answer, from what the worker knows: no Redis command per call. */
  readiness(): Promise<Readiness>;
  stop(): void;
}

/**
 * `/readyz`: Redis answers, the worker consumes, and how its runs are isolated. Redis is pinged
 * in the background (every REDIS_PROBE_INTERVAL_MS, and as soon as the connection is back), so
 * the endpoint's callers cannot load Redis through it; the rest is the worker's own state.
 */
export function watchReadiness(
  worker: Worker,
  connections: WorkerConnections,
  isolation: Isolation['summary'],
  redisUrl: string,
): ReadinessWatch {
  const { commands } = connections;
  const ping = new PingProbe(commands, redisUrl);
  const blocking = blockingClientOf(worker);
  void ping.run();
  const timer = setInterval(() => void ping.run(), REDIS_PROBE_INTERVAL_MS);
  timer.unref();
  const onReady = (): void => void ping.run();
  commands.on('ready', onReady);
  return {
    async readiness() {
      const checks: Record<string, boolean | string> = {
        consuming: worker.isRunning() && !worker.closing,
        blockingConnection: (await blocking.current())?.status === 'ready',
        // While the connection is down, saying so needs no command.
        redis: commands.status === 'ready' ? await ping.last() : `connection ${commands.status}`,
        events: connections.events.status === 'ready',
      };
      return {
        ready: Object.values(checks).every((value) => value === true),
        checks,
        isolation,
      };
    },
    stop() {
      clearInterval(timer);
      commands.off('ready', onReady);
    },
  };
}

/** PING, one at a time: a ping still waiting is joined, not repeated. */
class PingProbe {
  private answer: true | string | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly redis: RedisClient,
    private readonly url: string,
  ) {}

  run(): Promise<void> {
    this.running ??= this.ping().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** The last answer; only before the first one does a caller wait for a ping. */
  async last(): Promise<true | string> {
    if (this.answer === null) await this.run();
    return this.answer ?? 'not checked yet';
  }

  private async ping(): Promise<void> {
    // Commands wait through an outage on this connection: they would pile up.
    if (this.redis.status !== 'ready') return;
    try {
      await withTimeout(this.redis.ping(), PING_TIMEOUT_MS);
      this.answer = true;
    } catch (error) {
      this.answer = redactIn(errorMessage(error), this.url);
    }
  }
}

/**
 * BullMQ's blocking connection, once it has connected; its state is read as it is then. Until
 * it has, a caller waits a little for it (a worker just started), never for a Redis command.
 */
function blockingClientOf(worker: Worker): { current(): Promise<RedisClient | undefined> } {
  let client: RedisClient | undefined;
  const pending = worker.backend.blockingClient ?? Promise.resolve(undefined);
  const connected = pending.then(
    (resolved) => {
      client = resolved as RedisClient | undefined;
    },
    () => undefined,
  );
  return {
    async current() {
      // The promise can stay pending while Redis is away: /readyz must answer all the same.
      if (client === undefined) await doneWithin(connected, BLOCKING_WAIT_MS);
      return client;
    },
  };
}
