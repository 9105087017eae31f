import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName } from '../support/worker.js';

const redisUrl = inject('redisUrl');

interface Probe {
  read?: Record<string, string>;
  list?: Record<string, string[] | string>;
}

// The CLI is put back in a run's sandbox where the sandbox empties the directory it is in (/tmp).
// Put back whole, it brought WORK_DIR and RUN_ROOT with it where they are inside its directory.
describe('a run whose CLI sits in a directory that holds WORK_DIR and RUN_ROOT', () => {
  let top: string;
  let worker: WorkerProcess;
  let client: ClaudeboxClient;

  beforeAll(async () => {
    top = mkdtempSync(join(tmpdir(), 'claudebox-beside-'));
    chmodSync(top, 0o755);
    for (const file of ['claude-hostile.mjs', 'lib.mjs']) {
      copyFileSync(fixture(file), join(top, file));
    }
    chmodSync(join(top, 'claude-hostile.mjs'), 0o755);
    for (const dir of ['a', 'b']) mkdirSync(join(top, 'work', dir), { recursive: true });
    writeFileSync(join(top, 'work', 'a', 'secret.txt'), 'of job a');
    const queueName = uniqueQueueName();
    worker = spawnWorkerProcess({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: join(top, 'claude-hostile.mjs'),
      WORK_DIR: join(top, 'work'),
      RUN_ROOT: join(top, 'run-root'),
      RUN_ISOLATION: 'required',
      RUN_NAMESPACES: 'auto',
      RUN_UID_BASE: '57400',
      RUN_UID_COUNT: '2',
    });
    const ready = await worker.waitForLog('worker ready');
    expect(ready.isolation).toMatchObject({ namespaces: ['pid', 'ipc', 'mount'] });
    client = createClient({ url: redisUrl, queueName });
  });

  afterAll(async () => {
    await client.close();
    worker.child.kill('SIGTERM');
    await worker.exited;
    rmSync(top, { recursive: true, force: true });
  });

  it('runs it, and sees nothing of WORK_DIR and RUN_ROOT but its own way down', async () => {
    const jobId = randomUUID();
    const ask = {
      read: [join(top, 'work', 'a', 'secret.txt')],
      list: [top, join(top, 'work'), join(top, 'run-root')],
    };
    await client.enqueue({ prompt: JSON.stringify(ask), workingDir: 'b' }, { jobId, attempts: 1 });
    const events = await collectEvents(client.events(jobId));
    expect(await client.result(jobId, { timeoutMs: 30_000 })).toMatchObject({ success: true });
    const probe = events
      .flatMap((event: ExecuteEvent) => (event.type === 'output' ? [event.content] : []))
      .map((content) => JSON.parse(content) as { type?: string } & Probe)
      .find((line) => line.type === 'probe');
    expect(probe?.read).toEqual({ [join(top, 'work', 'a', 'secret.txt')]: 'ENOENT' });
    expect(probe?.list?.[join(top, 'work')]).toEqual(['b']);
    // Its home's way down, and no more: no leases, no sessions, no other run's scratch.
    expect(probe?.list?.[join(top, 'run-root')]).toEqual(['homes']);
    // The CLI's own directory is there, read-only, to run it from.
    expect(probe?.list?.[top]).toEqual(
      expect.arrayContaining(['claude-hostile.mjs', 'lib.mjs', 'work', 'run-root']),
    );
  });
});
