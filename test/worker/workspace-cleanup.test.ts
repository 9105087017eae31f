import { randomUUID } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import { eventually, isAlive, pidsWithEnv } from '../support/processes.js';
import { plantDeadWorkersRun, plantSetAside } from '../support/set-aside.js';
import { findFreePort } from '../support/redis-server.js';
import { git } from '../support/git.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  createQueue,
  fixture,
  partGauge,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** A small repository `name` under root/repos, on branch main. */
function makeRepository(root: string, name: string): string {
  const path = join(root, 'repos', name);
  mkdirSync(path, { recursive: true });
  git(path, 'init', '--quiet', '--initial-branch=main');
  writeFileSync(join(path, 'README.md'), `${name}\n`);
  git(path, 'add', '-A');
  git(path, 'commit', '--quiet', '-m', 'first');
  return path;
}

const checkoutsIn = (workspaceDir: string): string[] =>
  readdirSync(join(workspaceDir, 'checkouts'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(workspaceDir, 'checkouts', entry.name));

/** The sources of the cached clones, as each clone's origin names it. */
/**
 * The sources of the clones in the cache, or undefined while one of them cannot be read: the
 * sweep is removing it right now.
 */
function cachedSources(workspaceDir: string): string[] | undefined {
  const sources: string[] = [];
  for (const name of readdirSync(join(workspaceDir, 'cache'))) {
    if (!name.endsWith('.git')) continue;
    try {
      sources.push(git(join(workspaceDir, 'cache', name), 'config', '--get', 'remote.origin.url'));
    } catch {
      return undefined;
    }
  }
  return sources.sort();
}

/** `du`'s count of the bytes on disk under `path` (each hard-linked file once). */
const du = (path: string): number =>
  Number(execFileSync('du', ['-s', '--block-size=1', path], { encoding: 'utf8' }).split('\t')[0]);

const gauge = (worker: TestWorker, part: string) =>
  partGauge(worker, 'claudebox_workspace_disk_bytes', part);

describe("a worker's workspace directory does not fill up", () => {
  let root: string;
  let workDir: string;
  let gate: string;
  const queues: Queue[] = [];
  const processes: WorkerProcess[] = [];
  const workers: TestWorker[] = [];

  beforeEach(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'claudebox-cleanup-')));
    workDir = join(root, 'work');
    mkdirSync(workDir);
    gate = join(root, 'gate');
  });

  afterEach(async () => {
    rmSync(gate, { force: true });
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) {
        worker.child.kill('SIGKILL');
      }
      await worker.exited;
    }
    for (const worker of workers.splice(0)) await worker.worker.shutdown(0);
    for (const queue of queues.splice(0)) {
      await queue.obliterate({ force: true });
      await queue.close();
    }
    rmSync(root, { recursive: true, force: true });
  });

  const workspaceDir = (): string => join(workDir, '.claudebox-workspaces');

  function queue(): { name: string; queue: Queue } {
    const name = uniqueQueueName();
    const made = createQueue(redisUrl, name);
    queues.push(made);
    return { name, queue: made };
  }

  async function enqueue(on: Queue, source: string, ask: object): Promise<string> {
    const jobId = randomUUID();
    const request = { prompt: JSON.stringify(ask), workspace: { source, ref: 'main' } };
    await on.add('execute', request, { jobId, attempts: 1 });
    return jobId;
  }

  async function finished(on: Queue, jobId: string): Promise<string> {
    return waitFor(
      `job ${jobId} to finish`,
      async () => {
        const state = await on.getJobState(jobId);
        return state === 'completed' || state === 'failed' ? state : undefined;
      },
      60_000,
    );
  }

  async function startWorker(queueName: string, env: Record<string, string>) {
    const worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-files.mjs'),
      workDir,
      env: {
        WORKSPACE_SOURCES: join(root, 'repos'),
        WORKSPACE_SWEEP_SECONDS: '1',
        CONCURRENCY: '2',
        HEALTH_PORT: String(await findFreePort()),
        HEALTH_HOST: '127.0.0.1',
        ...env,
      },
    });
    workers.push(worker);
    return worker;
  }

  it('removes the checkout a SIGKILLed worker left when a worker starts on the same WORK_DIR, never one a live worker holds', async () => {
    const repo = makeRepository(root, 'app');
    const env = {
      REDIS_URL: redisUrl,
      CLAUDE_BIN: fixture('claude-files.mjs'),
      WORK_DIR: workDir,
      WORKSPACE_SOURCES: join(root, 'repos'),
      WORKSPACE_SWEEP_SECONDS: '3600',
    };
    const first = queue();
    const killed = spawnWorkerProcess({ ...env, QUEUE_NAME: first.name });
    processes.push(killed);
    await killed.waitForLog('worker ready');
    writeFileSync(gate, '');
    const jobId = await enqueue(first.queue, repo, {
      write: { 'wip.txt': 'x\n' },
      holdWhile: gate,
    });
    const [checkout] = await waitFor('the run to write in its checkout', () => {
      const found = checkoutsIn(workspaceDir());
      return found.some((dir) => existsSync(join(dir, 'wip.txt'))) ? found : undefined;
    });

    // A worker starting beside a live one leaves the live one's checkout alone.
    const beside = spawnWorkerProcess({ ...env, QUEUE_NAME: queue().name });
    processes.push(beside);
    await beside.waitForLog('worker ready');
    expect(checkoutsIn(workspaceDir())).toEqual([checkout]);

    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(
      await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 10_000),
    ).toBe(true);
    expect(checkoutsIn(workspaceDir())).toEqual([checkout]);

    // The next worker to start sweeps before it takes jobs.
    const next = spawnWorkerProcess({ ...env, QUEUE_NAME: queue().name });
    processes.push(next);
    await next.waitForLog('worker ready');
    expect(checkoutsIn(workspaceDir())).toEqual([]);
    expect(readdirSync(join(workspaceDir(), 'checkouts'))).toEqual([]);
  }, 90_000);

  it('leaves a checkout that a set-aside run could still be in to the sweep after its uid is cleared, never before', async () => {
    const { name } = queue();
    // A checkout nobody holds any more (its attempt left it to the sweep), reached by a run
    // whose uid is set aside under a lease that holds (a uid outside every pool, in the RUN_ROOT
    // the test workers share).
    const checkouts = join(workspaceDir(), 'checkouts');
    const checkout = join(checkouts, randomUUID().replaceAll('-', ''));
    mkdirSync(checkout, { recursive: true });
    writeFileSync(join(checkout, 'left.txt'), 'a process of the run may still be here\n');
    writeFileSync(`${checkout}.holder`, JSON.stringify({ keepUntil: 0, cache: '' }));
    const setAside = plantSetAside(49_998, [checkout]);
    try {
      // Isolated: a run's uid can pass through to WORK_DIR. Its first sweep ran before it was
      // ready, and it sweeps every second.
      chmodSync(root, 0o711);
      const worker = await startWorker(name, { RUN_ISOLATION: 'required' });
      await sleep(2500);
      expect(worker.worker.isolation.mode).toBe('uid');
      expect(readFileSync(join(checkout, 'left.txt'), 'utf8')).toContain('may still be here');

      setAside.clear();
      await waitFor(
        'the sweep to remove the checkout',
        () => (readdirSync(checkouts).length === 0 ? true : undefined),
        30_000,
      );
    } finally {
      setAside.remove();
    }
  }, 60_000);

  it("removes a checkout a dead worker's run was handed only once it stopped that run's processes", async () => {
    const { name } = queue();
    const checkouts = join(workspaceDir(), 'checkouts');
    const checkout = join(checkouts, randomUUID().replaceAll('-', ''));
    mkdirSync(checkout, { recursive: true });
    writeFileSync(`${checkout}.holder`, JSON.stringify({ keepUntil: 0, cache: '' }));
    // A worker and its watchdog were killed: a process of its run (uid 49 997, outside every
    // pool) lives on, and its lease and the note of what its run was handed are still there.
    const dead = plantDeadWorkersRun(49_997, [checkout]);
    const run = spawn(
      'setpriv',
      ['--reuid=49997', '--regid=49997', '--clear-groups', 'sleep', '600'],
      {
        stdio: 'ignore',
      },
    );
    try {
      chmodSync(root, 0o711);
      await startWorker(name, { RUN_ISOLATION: 'required' });
      const runWhenRemoved = await waitFor(
        'the sweep to remove the checkout',
        () => (existsSync(checkout) ? undefined : { alive: isAlive(run.pid ?? 0) }),
        30_000,
      );
      expect(runWhenRemoved).toEqual({ alive: false });
      expect(dead.ended()).toBe(true);
    } finally {
      run.kill('SIGKILL');
      dead.remove();
    }
  }, 60_000);

  it("keeps a failed attempt's checkout for WORKSPACE_KEEP_FAILED_SECONDS, then removes it", async () => {
    const repo = makeRepository(root, 'app');
    const { name, queue: on } = queue();
    await startWorker(name, { WORKSPACE_KEEP_FAILED_SECONDS: '10' });

    const good = await enqueue(on, repo, { write: { 'done.txt': 'ok\n' } });
    expect(await finished(on, good)).toBe('completed');
    expect(checkoutsIn(workspaceDir())).toEqual([]);

    const bad = await enqueue(on, repo, { write: { 'partial.txt': 'half\n' }, exitCode: 1 });
    expect(await finished(on, bad)).toBe('failed');
    const kept = checkoutsIn(workspaceDir());
    expect(kept).toHaveLength(1);
    expect(existsSync(join(kept[0] ?? '', 'partial.txt'))).toBe(true);

    await waitFor(
      'the kept checkout to go',
      () => (readdirSync(join(workspaceDir(), 'checkouts')).length === 0 ? true : undefined),
      90_000,
    );
  }, 120_000);

  it('prunes cached clones past WORKSPACE_CACHE_MAX_BYTES least recently used first, never one in use, and reports the bytes', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((name) => makeRepository(root, name));
    if (a === undefined || b === undefined || c === undefined) throw new Error('no repositories');
    const sizing = queue();
    const measuring = await startWorker(sizing.name, {});
    await finished(sizing.queue, await enqueue(sizing.queue, a, {}));
    // The gauge says what du says once a sweep has measured the cache.
    const oneClone = await waitFor('the cache gauge', async () => {
      const bytes = await gauge(measuring, 'cache');
      return bytes !== undefined && bytes === du(join(workspaceDir(), 'cache')) ? bytes : undefined;
    });
    expect(oneClone).toBeGreaterThan(0);
    await measuring.worker.shutdown(0);

    // Room for one clone, not two.
    const { name, queue: on } = queue();
    const worker = await startWorker(name, {
      WORKSPACE_CACHE_MAX_BYTES: String(Math.floor(oneClone * 1.5)),
    });
    writeFileSync(gate, '');
    const holding = await enqueue(on, a, { write: { 'wip.txt': 'x\n' }, holdWhile: gate });
    await waitFor('the held run', () =>
      checkoutsIn(workspaceDir()).length > 0 ? true : undefined,
    );
    await waitFor('the checkout gauge', async () =>
      ((await gauge(worker, 'checkouts')) ?? 0) > 0 ? true : undefined,
    );
    expect(await finished(on, await enqueue(on, b, {}))).toBe('completed');
    // a is the least recently used but in use: b goes instead.
    await waitFor('b to be pruned', () =>
      cachedSources(workspaceDir())?.includes(b) === false ? true : undefined,
    );
    expect(cachedSources(workspaceDir())).toEqual([a]);
    expect(await on.getJobState(holding)).toBe('active');

    rmSync(gate);
    expect(await finished(on, holding)).toBe('completed');
    expect(await finished(on, await enqueue(on, c, {}))).toBe('completed');
    await waitFor('a, now unused and least recently used, to be pruned', () =>
      cachedSources(workspaceDir())?.includes(a) === false ? true : undefined,
    );
    expect(cachedSources(workspaceDir())).toEqual([c]);
    await waitFor('the gauges to measure one clone and no checkout', async () =>
      (await gauge(worker, 'cache')) === du(join(workspaceDir(), 'cache')) &&
      (await gauge(worker, 'checkouts')) === du(join(workspaceDir(), 'checkouts'))
        ? true
        : undefined,
    );
  }, 180_000);
});
