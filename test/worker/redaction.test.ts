import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCli } from '../cli/support.js';
import { findFreePort, startRedisServer, type RedisServer } from '../support/redis-server.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { fixture, uniqueQueueName, waitFor } from '../support/worker.js';

/** A password in the user info and another in the query: ioredis reads either. */
const secretUrl = (port: number): string => `redis://:sekret@127.0.0.1:${port}/?password=sekret2`;

describe('a Redis URL with secrets in it', () => {
  const processes: WorkerProcess[] = [];
  const servers: RedisServer[] = [];
  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await worker.exited;
    }
    for (const server of servers.splice(0)) await server.close();
  });

  it('is shown redacted when Redis cannot be reached, by the worker and by the CLI', async () => {
    const url = secretUrl(await findFreePort());
    const worker = spawnWorkerProcess({
      REDIS_URL: url,
      CLAUDE_BIN: fixture('claude-success.mjs'),
    });
    processes.push(worker);
    expect(await worker.exited).toBe(1);
    const cli = spawnCli(['events', 'some-job'], { REDIS_URL: url });
    expect(await cli.exited).not.toBe(0);

    const printed = [
      ...worker.stderr,
      ...worker.logs.map((log) => JSON.stringify(log)),
      cli.stdout(),
      cli.stderr(),
    ].join('\n');
    expect(printed).toContain('redis://:***@127.0.0.1:');
    expect(printed).toContain('/?password=***');
    expect(printed).not.toContain('sekret');
  });

  it('is shown redacted by a running worker: at start, in /readyz and when the connection is lost', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 'sekret');
    admin.disconnect();
    const url = secretUrl(Number(new URL(redis.url).port));
    const healthPort = await findFreePort();
    const worker = spawnWorkerProcess({
      REDIS_URL: url,
      QUEUE_NAME: uniqueQueueName(),
      CLAUDE_BIN: fixture('claude-success.mjs'),
      HEALTH_PORT: String(healthPort),
    });
    processes.push(worker);
    const ready = await worker.waitForLog('worker ready');
    expect(ready.redis).toBe(`redis://:***@127.0.0.1:${new URL(redis.url).port}/?password=***`);

    await redis.stop();
    await worker.waitForLog('Redis connection lost; retrying');
    const readyz = await waitFor('readyz to fail', async () => {
      const response = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      return response.status === 503 ? await response.text() : undefined;
    });

    const printed = [...worker.stderr, ...worker.logs.map((log) => JSON.stringify(log)), readyz];
    expect(printed.join('\n')).not.toContain('sekret');
  });
});
