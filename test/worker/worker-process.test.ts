import { spawn as nodeSpawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { findFreePort } from '../support/redis-server.js';
import { eventually, isAlive, pidsWithEnv } from '../support/processes.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { createQueue, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

describe('the worker process', () => {
  const processes: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of processes.splice(0)) {
      if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
      await worker.exited;
    }
  });
  const spawn = (env: Record<string, string>): WorkerProcess => {
    const worker = spawnWorkerProcess(env);
    processes.push(worker);
    return worker;
  };

  it('on SIGTERM stops taking jobs, requeues the active one after the grace time, leaves no claude behind and exits 0', async () => {
    const queueName = uniqueQueueName();
    const worker = spawn({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-stubborn.mjs'),
      SHUTDOWN_GRACE_SECONDS: '1',
      KILL_GRACE_SECONDS: '0.5',
    });
    await worker.waitForLog('worker ready');
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    try {
      const jobId = randomUUID();
      await client.enqueue({ prompt: 'forever' }, { jobId, attempts: 1 });
      const claudePid = await waitFor('the run', () => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)[0]);

      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);

      expect(isAlive(claudePid)).toBe(false);
      expect(pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)).toEqual([]);
      expect(await queue.getJobState(jobId)).toBe('waiting');
      expect((await queue.getJob(jobId))?.attemptsMade).toBe(0);
      expect(worker.logs.map((log) => log.msg)).toEqual(
        expect.arrayContaining([
          'shutting down: no new jobs',
          'stopping runs and requeueing their jobs',
          'worker stopped',
        ]),
      );
      const started = worker.logs.find((log) => log.msg === 'job started');
      expect(started).toMatchObject({ jobId, attempt: 1, pid: claudePid });
      expect(worker.logs.find((log) => log.msg === 'job ended')).toMatchObject({
        jobId,
        attempt: 1,
        failure: 'shutdown',
      });
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  /**
   * `npm start` with its output collected, once the worker is ready; `detached`: in a process
   * group of its own, as a terminal runs it.
   */
  const npmStart = async (env: Record<string, string>, detached = false) => {
    const npm = nodeSpawn('npm', ['start'], {
      cwd: new URL('../../', import.meta.url).pathname,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: mkdtempSync(join(tmpdir(), 'claudebox-npm-home-')),
        REDIS_URL: redisUrl,
        HEALTH_PORT: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached,
    });
    let output = '';
    npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => npm.once('exit', resolve));
    await waitFor('the worker to be ready', () =>
      output.includes('"msg":"worker ready"') ? true : undefined,
    );
    return { npm, exited, output: () => output };
  };

  it('shuts down gracefully when SIGTERM reaches `npm start` (as in a container), leaving nothing behind', async () => {
    const queueName = uniqueQueueName();
    const { npm, exited, output } = await npmStart({
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-success.mjs'),
    });

    npm.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output()).toContain('"msg":"signal received"');
    expect(output()).toContain('"msg":"worker stopped"');
    // Neither the worker nor its watchdog outlived npm.
    expect(await eventually(() => pidsWithEnv('QUEUE_NAME', queueName).length === 0, 3000)).toBe(
      true,
    );
  });

  /** `npm start` in a process group of its own, as a terminal runs it, with one stubborn run. */
  const npmStartWithARun = async () => {
    const queueName = uniqueQueueName();
    const { npm, exited, output } = await npmStart(
      {
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-stubborn.mjs'),
        SHUTDOWN_GRACE_SECONDS: '1',
        KILL_GRACE_SECONDS: '0.5',
      },
      true,
    );
    const client = createClient({ url: redisUrl, queueName });
    const jobId = randomUUID();
    await client.enqueue({ prompt: 'forever' }, { jobId, attempts: 1 });
    await client.close();
    await waitFor('the run', () => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId)[0]);
    // What Ctrl-C in a terminal does: SIGINT to every process of the group, npm and the worker.
    const ctrlC = () => process.kill(-(npm.pid ?? 0), 'SIGINT');
    return { ctrlC, exited, output, queueName };
  };

  it('takes one Ctrl-C on `npm start` in a terminal, which reaches the worker twice, as one signal', async () => {
    const { ctrlC, exited, output, queueName } = await npmStartWithARun();
    try {
      ctrlC();
      expect(await exited).toBe(0);
      expect(output()).toContain('"msg":"signal received"');
      expect(output()).not.toContain('second signal');
      expect(output()).toContain('"msg":"worker stopped"');
    } finally {
      await createQueue(redisUrl, queueName).obliterate({ force: true });
    }
  });

  it('stops the runs at once on a second Ctrl-C, half a second after the first', async () => {
    const { ctrlC, exited, output, queueName } = await npmStartWithARun();
    try {
      ctrlC();
      await new Promise((resolve) => setTimeout(resolve, 500));
      ctrlC();
      expect(await exited).toBe(0);
      expect(output()).toContain('"msg":"second signal: stopping runs now"');
    } finally {
      await createQueue(redisUrl, queueName).obliterate({ force: true });
    }
  });

  it('on SIGTERM while it starts up, finishes starting, then stops as asked, taking no job, and exits 0', async () => {
    // Redis behind a proxy that holds the first connection a while: the start-up's probe waits
    // there; the worker's own connections, which take jobs, go through at once.
    const target = new URL(redisUrl);
    let probed = false;
    const proxy = createServer((client) => {
      const holdMs = probed ? 0 : 1000;
      probed = true;
      setTimeout(() => {
        const server = connect(Number(target.port), target.hostname);
        client.pipe(server).pipe(client);
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
      }, holdMs);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const queueName = uniqueQueueName();
    const queue = createQueue(redisUrl, queueName);
    try {
      // A job waits already: a worker asked to stop must not start its run.
      await queue.add('execute', { prompt: 'hello' }, { jobId: 'waiting' });
      const { port } = proxy.address() as AddressInfo;
      const worker = spawn({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        QUEUE_NAME: queueName,
        CLAUDE_BIN: fixture('claude-success.mjs'),
      });
      await waitFor('the start-up to reach Redis', () => (probed ? true : undefined));
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      const said = worker.logs.map((log) => log.msg);
      expect(said).toEqual(expect.arrayContaining(['worker ready', 'signal received']));
      expect(said).not.toContain('job started');
      expect(said.at(-1)).toBe('worker stopped');
      expect(await queue.getJobState('waiting')).toBe('waiting');
    } finally {
      proxy.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it('exits 1 within 5 s with one line naming the URL when Redis is unreachable', async () => {
    const port = await findFreePort();
    const started = Date.now();
    const worker = spawn({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      CLAUDE_BIN: fixture('claude-success.mjs'),
    });

    expect(await worker.exited).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000 + 2000 /* node and tsx start-up */);
    expect(worker.stderr).toHaveLength(1);
    expect(worker.stderr[0]).toMatch(
      new RegExp(
        `^claudebox: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\): connect ECONNREFUSED`,
      ),
    );
  });

  it('exits 1 naming each bad setting, and hides a Redis password', async () => {
    const worker = spawn({
      REDIS_URL: 'http://:s3cret@127.0.0.1:6379',
      CONCURRENCY: 'many',
      DEFAULT_TIMEOUT_SECONDS: '-1',
      SESSION_STORE: 'disk',
    });
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toEqual([
      'claudebox: invalid configuration: REDIS_URL="http://:***@127.0.0.1:6379/": must be a redis:// or rediss:// URL, redis+cluster://host:port[,host:port...] or redis+sentinel://host:port[,host:port...]/masterName; CONCURRENCY="many": must be a number in decimal digits (no exponent, no hex); DEFAULT_TIMEOUT_SECONDS="-1": must be positive; SESSION_STORE="disk": must be redis or off',
    ]);
  });

  it.each([
    ['WORK_DIR is a file', { WORK_DIR: '/etc/passwd' }, 'WORK_DIR="/etc/passwd": not a directory'],
    [
      'a database Redis refuses',
      { REDIS_URL: `${redisUrl}/99` },
      `cannot reach Redis at ${redisUrl}/99 (REDIS_URL): ERR DB index is out of range`,
    ],
    [
      'a WORKSPACE_DIR that cannot be made',
      { WORKSPACE_SOURCES: '/srv', WORKSPACE_DIR: '/etc/passwd/workspaces' },
      "WORKSPACE_DIR=/etc/passwd/workspaces: cannot create /etc/passwd/workspaces: ENOTDIR: not a directory, mkdir '/etc/passwd/workspaces'",
    ],
  ])('exits 1 with one line naming the setting where %s', async (_, env, message) => {
    const worker = spawn({
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
      CLAUDE_BIN: fixture('claude-success.mjs'),
      ...env,
    });
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toEqual([`claudebox: ${message}`]);
  });

  it('exits 1 naming the profile and the field when PROFILES_FILE is not right, before taking any job', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'claudebox-profiles-')), 'profiles.json');
    const hooks = { Stop: [{ hooks: [{ type: 'command', command: 'true' }] }] };
    writeFileSync(
      file,
      JSON.stringify({
        profiles: {
          ok: {},
          github: { mcpServers: { gh: { type: 'http', url: 'https://example.com', token: 'x' } } },
          ci: { settings: { hooks } },
        },
      }),
    );
    const worker = spawn({
      REDIS_URL: redisUrl,
      CLAUDE_BIN: fixture('claude-success.mjs'),
      PROFILES_FILE: file,
    });
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toEqual([
      `claudebox: invalid configuration: PROFILES_FILE=${file}: profile "github": mcpServers.gh.token: unknown field; profile "ci": settings.hooks: makes the CLI run commands outside the tool permissions; set "allowHooks": true in the profile to allow it`,
    ]);
  });

  it('exits 1 naming HEALTH_PORT when the port is taken, before taking any job', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const worker = spawn({
        REDIS_URL: redisUrl,
        QUEUE_NAME: uniqueQueueName(),
        CLAUDE_BIN: fixture('claude-success.mjs'),
        HEALTH_PORT: String(port),
        HEALTH_HOST: '127.0.0.1',
      });
      expect(await worker.exited).toBe(1);
      expect(worker.stderr).toEqual([
        `claudebox: HEALTH_HOST=127.0.0.1, HEALTH_PORT=${port}: cannot listen there: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
      ]);
    } finally {
      taken.close();
    }
  });

  it('exits 1 when CLAUDE_BIN points nowhere', async () => {
    const worker = spawn({ REDIS_URL: redisUrl, CLAUDE_BIN: '/nowhere/claude' });
    expect(await worker.exited).toBe(1);
    expect(worker.stderr).toEqual([
      'claudebox: CLAUDE_BIN="/nowhere/claude": no executable file there',
    ]);
  });
});
