import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { fixture, uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** The local addresses of the sockets listening on `port`, from the kernel's own table. */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const rows = ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) =>
    readFileSync(table, 'utf8').trim().split('\n').slice(1),
  );
  return rows
    .map((row) => row.trim().split(/\s+/))
    .filter(([, local, , state]) => state === '0A' && local?.endsWith(`:${hexPort}`))
    .map(([, local]) => (local ?? '').split(':')[0] ?? '');
}

describe('workers sharing a host', () => {
  const processes: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await worker.exited;
    }
  });

  it('all start with the same settings, each on a health port of its own on loopback, and all take jobs', async () => {
    const queueName = uniqueQueueName();
    // The same settings for both, HEALTH_PORT and HEALTH_HOST left unset, as `npm start` twice.
    const env = {
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-slow.mjs'),
      HEALTH_PORT: '',
    };
    const workers = [spawnWorkerProcess(env), spawnWorkerProcess(env)];
    processes.push(...workers);
    const ready = await Promise.all(workers.map((worker) => worker.waitForLog('worker ready')));

    const urls = ready.map((log) => String(log.health));
    expect(urls[0]).not.toBe(urls[1]);
    for (const url of urls) {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      // Bound to loopback alone: no other address of the host reaches it.
      expect(listeningAddresses(Number(new URL(url).port))).toEqual(['0100007F']);
    }

    const client = createClient({ url: redisUrl, queueName });
    try {
      // Each worker runs one job at a time: two 3 s jobs at once need both of them.
      const jobIds = await Promise.all([
        client.enqueue({ prompt: 'sleep 3' }),
        client.enqueue({ prompt: 'sleep 3' }),
      ]);
      const results = await Promise.all(
        jobIds.map((jobId) => client.result(jobId, { timeoutMs: 30_000 })),
      );
      expect(results.map((result) => result.success)).toEqual([true, true]);
      const ranBy = workers.map((worker) =>
        worker.logs.filter((log) => log.msg === 'job started').map((log) => log.jobId),
      );
      expect(ranBy.map((ids) => ids.length)).toEqual([1, 1]);
      expect(ranBy.flat().sort()).toEqual([...jobIds].sort());
    } finally {
      await client.close();
    }
  });
});
