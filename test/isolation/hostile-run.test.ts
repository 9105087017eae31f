import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent, ExecuteResult, StartedEvent } from '../../src/contract/index.js';
import { ipcObjectsOf } from '../../src/isolation/host-ipc.js';
import {
  CAP_SYS_RESOURCE,
  eventually,
  hasCapability,
  isAlive,
  pidsOfUid,
  zombiesOfUid,
} from '../support/processes.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');
const root = new URL('../../', import.meta.url).pathname;

/** Where the runs' homes are: RUN_ROOT is left at its default. */
const homes = '/var/lib/claudebox/homes';

/** RUN_MAX_PROCESSES of the workers here: the fake CLI's own threads take some of them. */
const MAX_PROCESSES = 64;

/** What the hostile fake CLI found, from its `probe` line. */
interface Probe {
  uid: number;
  home: string;
  cwd: string;
  leaks?: { pid: string; secret: string }[];
  readable?: number;
  read?: Record<string, string>;
  /** The entries of each directory it could list; else why not. */
  list?: Record<string, string[] | string>;
  write?: Record<string, string>;
  exists?: Record<string, boolean>;
  signal?: Record<string, string>;
  escapedPid?: number;
  spawned?: { started: number; refused: string | null };
  oomScoreAdj?: { own: string; parent: string };
  oomLowered?: string;
  statfs?: Record<string, number | string>;
  ipc?: Record<string, string>;
  keyring?: Record<string, string>;
}

const probeOf = (events: ExecuteEvent[]): Probe => {
  for (const event of events) {
    if (event.type !== 'output') continue;
    const line = JSON.parse(event.content) as { type?: string };
    if (line.type === 'probe') return line as unknown as Probe;
  }
  throw new Error(`no probe line among ${events.length} events`);
};

describe.each([
  ['with namespaces', 'auto'],
  ['with its uid alone (as under Docker’s default seccomp profile)', 'off'],
])('a hostile run, isolated %s', (_name, namespaces) => {
  const secret = `worker-secret-${randomUUID()}`;
  const queueName = uniqueQueueName();
  let workDir: string;
  let worker: WorkerProcess;
  let client: ClaudeboxClient;

  /** Enqueues what the fake should try, and gives back its events and result. */
  const run = async (
    ask: Record<string, unknown>,
    request: Record<string, unknown> = {},
  ): Promise<{ events: ExecuteEvent[]; result: ExecuteResult; probe: Probe; jobId: string }> => {
    const jobId = randomUUID();
    await client.enqueue({ prompt: JSON.stringify(ask), ...request }, { jobId, attempts: 1 });
    const events = await collectEvents(client.events(jobId));
    const result = await client.result(jobId, { timeoutMs: 30_000 });
    return { events, result, probe: probeOf(events), jobId };
  };

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'claudebox-hostile-'));
    for (const dir of ['a', 'b', 'c']) mkdirSync(join(workDir, dir));
    worker = spawnWorkerProcess({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-hostile.mjs'),
      WORK_DIR: workDir,
      CONCURRENCY: '2',
      RUN_ISOLATION: 'required',
      RUN_NAMESPACES: namespaces,
      // Uids of its own: no other test's run takes one as soon as this worker's run gives it up.
      RUN_UID_BASE: namespaces === 'auto' ? '57100' : '57200',
      RUN_UID_COUNT: '4',
      KILL_GRACE_SECONDS: '0.5',
      RUN_MAX_PROCESSES: String(MAX_PROCESSES),
      CLAUDEBOX_TEST_WORKER_SECRET: secret,
    });
    const ready = await worker.waitForLog('worker ready');
    expect(ready.isolation).toMatchObject({
      mode: 'uid',
      namespaces: namespaces === 'auto' ? ['pid', 'ipc', 'mount'] : [],
    });
    client = createClient({ url: redisUrl, queueName });
  });

  afterAll(async () => {
    await client.close();
    worker.child.kill('SIGTERM');
    await worker.exited;
  });

  it('says in its started event how it is isolated', async () => {
    const { events, probe } = await run({});
    const started = events.find((event): event is StartedEvent => event.type === 'started');
    expect(started?.data.isolation).toEqual({
      mode: 'uid',
      uid: probe.uid,
      namespaces: namespaces === 'auto' ? ['pid', 'ipc', 'mount'] : [],
    });
    expect(probe.uid).toBeGreaterThanOrEqual(50000);
  });

  it('finds none of the worker’s variables in any /proc/*/environ, and cannot signal the worker', async () => {
    const { probe } = await run({
      secrets: [secret, 'REDIS_URL=', 'CLAUDEBOX_TEST_WORKER_SECRET'],
      signal: [worker.pid, process.pid],
    });
    expect(probe.leaks).toEqual([]);
    // It can read its own processes' environments, and nothing else.
    expect(probe.readable).toBeGreaterThan(0);
    // EPERM: not its to signal; ESRCH: not even there (inside a PID namespace of its own).
    for (const outcome of Object.values(probe.signal ?? {}))
      expect(outcome).toMatch(/^(EPERM|ESRCH)$/);
    expect(Object.keys(probe.signal ?? {})).toHaveLength(2);
  });

  it('cannot write the worker’s code, nor read the worker’s memory or open files', async () => {
    const code = [join(root, 'dist/cli/main.js'), join(root, 'package.json')];
    const before = code.map((file) => readFileSync(file, 'utf8'));
    const { probe } = await run({
      write: code,
      read: [`/proc/${worker.pid}/mem`, `/proc/${worker.pid}/environ`],
      list: [`/proc/${worker.pid}/fd`],
    });
    expect(Object.values(probe.write ?? {})).toHaveLength(2);
    // Not its to write (EACCES), read-only (EROFS), not even there, or (a checkout in /tmp, which
    // a sandbox empties) written in the run's own copy of the way down to its CLI.
    for (const outcome of Object.values(probe.write ?? {}))
      expect(outcome).toMatch(/^(EACCES|EROFS|ENOENT|ok)$/);
    expect(code.map((file) => readFileSync(file, 'utf8'))).toEqual(before);
    for (const outcome of [
      ...Object.values(probe.read ?? {}),
      ...Object.values(probe.list ?? {}),
    ]) {
      expect(outcome).toMatch(/^(EACCES|ENOENT|EPERM)$/);
    }
  });

  it('cannot read or write another running job’s working directory or home', async () => {
    writeFileSync(join(workDir, 'a', 'secret.txt'), 'of job a');
    const jobA = randomUUID();
    await client.enqueue(
      {
        prompt: JSON.stringify({ holdMs: 4000, plant: { 'notes.txt': 'of job a' } }),
        workingDir: 'a',
      },
      { jobId: jobA, attempts: 1 },
    );
    const eventsA: ExecuteEvent[] = [];
    const collecting = collectEvents(client.events(jobA), eventsA);
    const whoamiA = await waitFor('job a to say where it lives', () => {
      for (const event of eventsA) {
        if (event.type !== 'output') continue;
        const line = JSON.parse(event.content) as { type?: string; home?: string };
        if (line.type === 'whoami') return line.home;
      }
      return undefined;
    });

    const { probe } = await run(
      {
        read: [join(workDir, 'a', 'secret.txt'), join(whoamiA, 'notes.txt')],
        write: [join(workDir, 'a', 'planted.txt'), join(whoamiA, 'planted.txt')],
        list: [join(workDir, 'a'), homes, workDir],
      },
      { workingDir: 'b' },
    );
    // Not its to read (EACCES), or not even there (ENOENT: hidden by its mount namespace).
    const refused = namespaces === 'auto' ? 'ENOENT' : 'EACCES';
    expect(Object.values(probe.read ?? {})).toEqual([refused, refused]);
    for (const outcome of Object.values(probe.write ?? {})) {
      expect(outcome).toMatch(/^(EACCES|ENOENT|EROFS)$/);
    }
    // Refused; or, in a sandbox, whose hidden directories are empty ones of its own, nothing
    // but its own way down to its home and working directory.
    const ownWayDown = { [homes]: [basename(probe.home)], [workDir]: ['b'] };
    for (const [dir, outcome] of Object.entries(probe.list ?? {})) {
      if (typeof outcome === 'string') expect(outcome).toMatch(/^(EACCES|ENOENT)$/);
      else expect(outcome, dir).toEqual(ownWayDown[dir]);
    }
    expect(probe.list?.[join(workDir, 'a')]).toMatch(/^(EACCES|ENOENT)$/);
    expect(probe.home).not.toBe(whoamiA);
    expect(probe.uid).not.toBe(Number(/(\d+)-/.exec(whoamiA)?.[1]));

    await collecting;
    const resultA = await client.result(jobA, { timeoutMs: 30_000 });
    expect(resultA).toMatchObject({ success: true, error: null });
    expect(existsSync(join(workDir, 'a', 'planted.txt'))).toBe(false);
  });

  it('reaches the addDirs it asked for, no other directory of WORK_DIR, and gives them back', async () => {
    writeFileSync(join(workDir, 'c', 'given.txt'), 'from the control plane');
    const { probe, result } = await run(
      {
        write: [join(workDir, 'c', 'added.txt'), join(workDir, 'a', 'not-added.txt')],
        read: [join(workDir, 'c', 'given.txt')],
      },
      { workingDir: 'b', addDirs: ['c'] },
    );
    expect(result.success).toBe(true);
    const [added, notAdded] = Object.values(probe.write ?? {});
    expect(added).toBe('ok');
    expect(notAdded).toMatch(/^(EACCES|ENOENT|EROFS)$/);
    expect(probe.read).toEqual({ [join(workDir, 'c', 'given.txt')]: 'ok' });
    // Taken back when the run ends: root's again, closed to every run until the next hand-over.
    const after = statSync(join(workDir, 'c'));
    expect([after.uid, after.mode & 0o777]).toEqual([0, 0o700]);
    expect(existsSync(join(workDir, 'a', 'not-added.txt'))).toBe(false);

    // A job working in a directory of its own reaches one below `c` too, closed as `c` now is.
    mkdirSync(join(workDir, 'c', 'deeper'));
    const scratch = await run(
      { write: [join(workDir, 'c', 'deeper', 'added.txt')] },
      {
        addDirs: ['c/deeper'],
      },
    );
    expect(scratch.result.success).toBe(true);
    expect(Object.values(scratch.probe.write ?? {})).toEqual(['ok']);
  });

  it('leaves nothing in its home for the next job: settings, hooks and CLAUDE.md are gone', async () => {
    const first = await run({
      plant: {
        '.claude/settings.json': '{"hooks":{}}',
        '.claude/CLAUDE.md': 'obey',
        '.bashrc': 'evil',
      },
    });
    const second = await run({
      exists: ['.claude/settings.json', '.claude/CLAUDE.md', '.bashrc'].map((p) =>
        join(first.probe.home, p),
      ),
    });
    expect(second.probe.home).not.toBe(first.probe.home);
    expect(Object.values(second.probe.exists ?? {})).toEqual([false, false, false]);
    expect(existsSync(first.probe.home)).toBe(false);
  });

  it('cannot get a file it may not read kept as its session by linking its transcript to it', async () => {
    const hidden = mkdtempSync(join(tmpdir(), 'claudebox-root-only-'));
    const file = join(hidden, 'transcript.jsonl');
    const line = { type: 'user', message: { role: 'user', content: secret } };
    writeFileSync(file, `${JSON.stringify(line)}\n`, { mode: 0o600 });
    try {
      const first = await run({ transcriptLink: file });
      expect(first.result.success).toBe(true);
      // Had the worker kept that file as the session, resuming it would put it in the run's home.
      const jobId = randomUUID();
      const request = { prompt: '{}', resumeSessionId: first.result.sessionId ?? '' };
      await client.enqueue(request, { jobId, attempts: 1 });
      const resumed = await client.result(jobId, { timeoutMs: 30_000 });
      expect(resumed.failure).toBe('session-not-found');
    } finally {
      rmSync(hidden, { recursive: true, force: true });
    }
  });

  it('leaves no process of its uid, a setsid + env -i grandchild either, once its result is there', async () => {
    const { events, probe, result } = await run({ escape: true });
    expect(result.success).toBe(true);
    expect(events.at(-1)?.type).toBe('completed');
    expect(probe.escapedPid).toBeGreaterThan(0);
    // Inside a PID namespace the fake sees pids of its own: its processes are found by uid.
    if (namespaces === 'off') expect(isAlive(probe.escapedPid ?? 0)).toBe(false);
    expect(pidsOfUid(probe.uid)).toEqual([]);
  });

  it.each([
    ['', undefined],
    [', stopping every other process of its uid as it goes', 'STOP'],
    [', killing every other process of its uid as it goes', 'KILL'],
  ])(
    'leaves no process behind that forks a copy of itself and exits, again and again%s',
    async (_how, relaySignal) => {
      const beats = join(mkdtempSync(join(tmpdir(), 'claudebox-relay-')), 'beats');
      writeFileSync(beats, '');
      chmodSync(dirname(beats), 0o777);
      chmodSync(beats, 0o666);
      const { result, probe } = await run({ relay: beats, relaySignal });
      expect(result.success).toBe(true);
      expect(pidsOfUid(probe.uid)).toEqual([]);
      // Where it could reach the file (without a PID namespace), it wrote while the run lasted.
      const atEnd = statSync(beats).size;
      await sleep(500);
      expect(statSync(beats).size).toBe(atEnd);
      rmSync(dirname(beats), { recursive: true, force: true });
    },
  );

  it('leaves no process behind that stops every other process of its uid, in a loop', async () => {
    const { result, probe } = await run({ stopper: true });
    expect(result.success).toBe(true);
    expect(pidsOfUid(probe.uid)).toEqual([]);
  });

  it('cannot start more than RUN_MAX_PROCESSES processes and threads, and none of them outlives it', async () => {
    const { probe, result } = await run({ spawnMany: MAX_PROCESSES * 4 });
    expect(result.success).toBe(true);
    expect(probe.spawned?.refused).toBe('EAGAIN');
    expect(probe.spawned?.started).toBeGreaterThan(0);
    expect(probe.spawned?.started).toBeLessThan(MAX_PROCESSES);
    // The kill that ends the run is sent as its uid, by a process that must start all the same.
    expect(pidsOfUid(probe.uid)).toEqual([]);
    // And the next run of the worker starts as ever.
    expect((await run({})).result.success).toBe(true);
    // What was killed counts against the uid's cap until the host's init reaps it (the pool
    // hands that uid out again last).
    expect(await eventually(() => zombiesOfUid(probe.uid).length === 0, 10_000)).toBe(true);
  });

  it('is the OOM killer’s first pick, before the worker, from its first process on', async () => {
    const { probe } = await run({ oom: true });
    // Its parent is bwrap's init in a sandbox, else the worker (which keeps its own).
    const workerAdj = readFileSync(`/proc/${worker.child.pid}/oom_score_adj`, 'utf8').trim();
    expect(probe.oomScoreAdj).toEqual({
      own: '1000',
      parent: namespaces === 'auto' ? '1000' : workerAdj,
    });
    // It can take that back only where the worker lacks CAP_SYS_RESOURCE, which the worker
    // says at start.
    const warning = worker.logs.some((log) => String(log.msg).includes('lacks CAP_SYS_RESOURCE'));
    if (hasCapability(worker.child.pid ?? 0, CAP_SYS_RESOURCE)) {
      expect(probe.oomLowered).toBe('1000');
      expect(warning).toBe(false);
    } else {
      expect(probe.oomLowered).toBe(workerAdj);
      expect(warning).toBe(true);
    }
  });

  it('keeps its temporary files on RUN_ROOT’s disk, not in the host’s memory, and can write nowhere else', async () => {
    const temp = ['/tmp', '/var/tmp', '/dev/shm'];
    const elsewhere = ['/dev', homes];
    const { probe, result } = await run({
      statfs: temp,
      write: [...temp, ...elsewhere].map((dir) => `${dir}/claudebox-${randomUUID()}`),
    });
    expect(result.success).toBe(true);
    const written = Object.values(probe.write ?? {});
    expect(written.slice(0, 3)).toEqual(['ok', 'ok', 'ok']);
    if (namespaces === 'auto') {
      // Its own, beside its home: a tmpfs would take memory no process of the run shows.
      const disk = statfsSync(homes).type;
      expect(probe.statfs).toEqual({ '/tmp': disk, '/var/tmp': disk, '/dev/shm': disk });
      // bwrap's /dev and the tmpfs that hides RUN_ROOT are read-only.
      expect(written.slice(3)).toEqual(['EROFS', 'EROFS']);
    } else {
      expect(written.slice(3)).toEqual(['EACCES', 'EACCES']);
    }
  });

  it('leaves nothing in the host’s shared temporary directories', async () => {
    const names = ['/tmp', '/var/tmp', '/dev/shm'].map(
      (dir) => `${dir}/claudebox-left-${randomUUID()}`,
    );
    const { probe, result } = await run({ write: names });
    expect(result.success).toBe(true);
    expect(Object.values(probe.write ?? {})).toEqual(['ok', 'ok', 'ok']);
    // With namespaces they went to the sandbox's own; without, they are removed as the run ends.
    expect(names.filter((name) => existsSync(name))).toEqual([]);
  });

  it('leaves no System V IPC object of its uid on the host', async () => {
    const { probe, result } = await run({ ipc: true });
    expect(result.success).toBe(true);
    expect(probe.ipc).toEqual({ '-M': 'ok', '-Q': 'ok', '-S': 'ok' });
    // With namespaces they were the sandbox's own; without, they are removed as the run ends.
    expect(ipcObjectsOf(probe.uid)).toEqual([]);
  });

  // Keys are not namespaced: a sandbox refuses their calls (seccomp). Without namespaces that is
  // the host's to refuse, as Docker's default seccomp profile does (docs/security.md).
  if (namespaces === 'auto') {
    it('cannot add a key to, nor read, a keyring of the kernel, which other runs could share', async () => {
      const { probe, result } = await run({ keyring: true });
      expect(result.success).toBe(true);
      expect(probe.keyring).toEqual({ add_key: 'EPERM', keyctl: 'EPERM' });
    });
  }

  it('takes only the CLI’s own result: a forged line printed after it exited changes nothing', async () => {
    const { result } = await run({ forge: true });
    expect(result).toMatchObject({ success: true, finalOutput: 'real answer', costUsd: 0.01 });
    expect(result.output).not.toContain('FORGED');
  });
});
