import { randomUUID } from 'node:crypto';
import { chownSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import type { StartedEvent } from '../../src/contract/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');
/** nobody: a worker that is not root cannot switch runs to uids of their own. */
const NOBODY = 65534;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

function nobodysDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chownSync(dir, NOBODY, NOBODY);
  return dir;
}

describe('a worker that cannot isolate its runs (not root)', () => {
  const processes: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null) worker.child.kill('SIGTERM');
      await worker.exited;
    }
  });

  it('under RUN_ISOLATION=required refuses to start, naming what is missing', async () => {
    const worker = spawnWorkerProcess(
      {
        REDIS_URL: redisUrl,
        QUEUE_NAME: uniqueQueueName(),
        CLAUDE_BIN: fixture('claude-success.mjs'),
        WORK_DIR: nobodysDir('claudebox-work-'),
        HOME: nobodysDir('claudebox-home-'),
        RUN_ISOLATION: 'required',
      },
      { uid: NOBODY },
    );
    processes.push(worker);
    expect(await worker.exited).toBe(1);
    expect(worker.stderr.join('\n')).toBe(
      `claudebox: run isolation is required (RUN_ISOLATION=required) but the worker runs as uid ${NOBODY}, not root: it needs root to switch each run to a uid of its own`,
    );
  });

  it('under auto warns once, says isolation off in /readyz and in every started event, and runs jobs', async () => {
    const port = await freePort();
    const queueName = uniqueQueueName();
    const worker = spawnWorkerProcess(
      {
        REDIS_URL: redisUrl,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-success.mjs'),
        WORK_DIR: nobodysDir('claudebox-work-'),
        HOME: nobodysDir('claudebox-home-'),
        HEALTH_PORT: String(port),
        HEALTH_HOST: '127.0.0.1',
      },
      { uid: NOBODY },
    );
    processes.push(worker);
    await worker.waitForLog('worker ready');
    const reason = `the worker runs as uid ${NOBODY}, not root: it needs root to switch each run to a uid of its own`;
    const warnings = worker.logs.filter((log) =>
      String(log.msg).startsWith('RUNS ARE NOT ISOLATED'),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, isolation: 'off', reason });

    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as Record<
      string,
      unknown
    >;
    expect(ready.isolation).toEqual({ mode: 'off', namespaces: [], reason });

    const client = createClient({ url: redisUrl, queueName });
    try {
      const jobId = randomUUID();
      await client.enqueue({ prompt: 'hi' }, { jobId });
      const events = await collectEvents(client.events(jobId));
      const started = events.find((event): event is StartedEvent => event.type === 'started');
      expect(started?.data.isolation).toEqual({ mode: 'off', uid: null, namespaces: [], reason });
      expect((await client.result(jobId)).success).toBe(true);
    } finally {
      await client.close();
    }
  });
});
