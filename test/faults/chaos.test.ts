import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import {
  isTerminalEvent,
  readRunState,
  type ExecuteEvent,
  type ExecuteResult,
  type QueueAddress,
} from '../../src/contract/index.js';
import { readHistory } from '../../src/redis/history.js';
import { eventually, liveRunProcesses, pidsWithEnv } from '../support/processes.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import {
  collectEvents,
  createQueue,
  fixture,
  uniqueQueueName,
  waitFor,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');

const JOBS = 30;
const WORKERS = 3;
/** At most this many crashes reach any one job, fewer than its attempts: every job can finish. */
const KILLS = 5;
const ATTEMPTS = 6;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** mulberry32: small and seeded, so a failing schedule can be tried again with CHAOS_SEED. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function workerEnv(queueName: string, concurrency: number): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    QUEUE_NAME: queueName,
    CLAUDE_BIN: fixture('claude-slow.mjs'),
    CONCURRENCY: String(concurrency),
    // Short, so that another worker takes a dead one's jobs over within seconds.
    LOCK_DURATION_SECONDS: '2',
    KILL_GRACE_SECONDS: '1',
  };
}

const isRunning = (worker: WorkerProcess): boolean =>
  worker.child.exitCode === null && worker.child.signalCode === null;

const count = (worker: WorkerProcess, message: string): number =>
  worker.logs.filter((log) => log.msg === message).length;

/** Whether the worker's own log says it is running a CLI right now. */
const isBusy = (worker: WorkerProcess): boolean =>
  count(worker, 'job started') >
  count(worker, 'job ended') + count(worker, 'run stopped: the job is no longer ours');

const startedHere = (worker: WorkerProcess, jobId: string, attempt: number): boolean =>
  worker.logs.some(
    (log) => log.msg === 'job started' && log.jobId === jobId && log.attempt === attempt,
  );

interface Sighting {
  readonly runId: string;
  readonly jobId: string;
  readonly first: number;
  last: number;
  /** The pool uids its processes ran as. */
  readonly uids: Set<number>;
}

/** Watches /proc for the runs of these jobs: when each run was first and last seen alive. */
function watchRuns(jobIds: ReadonlySet<string>, everyMs: number) {
  const runs = new Map<string, Sighting>();
  const sample = (): void => {
    const now = Date.now();
    for (const { jobId, runId, uid } of liveRunProcesses()) {
      if (!jobIds.has(jobId)) continue;
      const seen = runs.get(runId) ?? { runId, jobId, first: now, last: now, uids: new Set() };
      seen.last = now;
      // Root only while the run is being started, before it becomes its uid.
      if (uid !== 0) seen.uids.add(uid);
      runs.set(runId, seen);
    }
  };
  const timer = setInterval(sample, everyMs);
  return { runs, stop: () => clearInterval(timer) };
}

const describeRun = (run: Sighting): string =>
  `run ${run.runId} of job ${run.jobId} (${run.first}..${run.last})`;

/** Every event published live on the queue's job channels, per job, in arrival order. */
async function listenToAllJobs(
  queueName: string,
): Promise<{ events: Map<string, ExecuteEvent[]>; close: () => Promise<void> }> {
  const subscriber = new Redis(redisUrl);
  const events = new Map<string, ExecuteEvent[]>();
  subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => {
    const event = JSON.parse(message) as ExecuteEvent;
    events.set(event.jobId, [...(events.get(event.jobId) ?? []), event]);
  });
  await subscriber.psubscribe(`bull:${queueName}:events:*`);
  return {
    events,
    close: async () => {
      await subscriber.quit();
    },
  };
}

interface ChaosJob {
  readonly id: string;
  readonly seconds: number;
}

/** What is wrong with one job's end and history; empty when nothing is. */
function problemsOf(
  job: ChaosJob,
  result: ExecuteResult,
  history: readonly ExecuteEvent[],
  live: readonly ExecuteEvent[],
  sightings: readonly Sighting[],
): string[] {
  const problems: string[] = [];
  const say = (what: string): void => {
    problems.push(`job ${job.id} (sleep ${job.seconds}): ${what}`);
  };
  if (!result.success || result.finalOutput !== `slept ${job.seconds}s`) {
    say(`ended ${result.failure ?? 'well'} with ${JSON.stringify(result.finalOutput)}`);
  }

  const seqs = history.map((event) => event.seq);
  if (seqs.some((seq, index) => seq !== index + 1)) say(`history seqs ${seqs.join(',')}`);
  const liveSeqs = live.map((event) => event.seq);
  if (liveSeqs.join(',') !== seqs.join(',')) {
    say(`live seqs ${liveSeqs.join(',')} are not the history's ${seqs.join(',')}`);
  }
  const attempts = history.map((event) => event.attempt);
  if (attempts.some((attempt, index) => index > 0 && attempt < (attempts[index - 1] ?? 0))) {
    say(`attempts out of order: ${attempts.join(',')}`);
  }

  const terminals = history.filter(isTerminalEvent);
  const lastAttempt = Math.max(...attempts);
  for (let attempt = 1; attempt <= lastAttempt; attempt++) {
    const ends = terminals.filter((event) => event.attempt === attempt).length;
    if (ends !== 1) say(`attempt ${attempt} has ${ends} terminal events`);
  }
  const final = history.at(-1);
  if (final?.type !== 'completed' || final.data.retrying || final.data.attempt !== result.attempt) {
    say(`last event ${JSON.stringify(final)}`);
  }
  for (const event of terminals) {
    if (event.type === 'failed' && (event.data.failure !== 'abandoned' || !event.data.retrying)) {
      say(`attempt ${event.attempt} failed: ${event.data.error ?? ''}`);
    }
  }
  const startedAt = history
    .filter((event) => event.type === 'started')
    .map((event) => Date.parse(event.timestamp));
  if (startedAt.some((at, index) => index > 0 && at <= (startedAt[index - 1] ?? 0))) {
    say(`runs started out of order: ${startedAt.join(',')}`);
  }

  // Seen in /proc: one run of the job after another, never two at once.
  const runs = [...sightings].sort((a, b) => a.first - b.first);
  runs.forEach((run, index) => {
    const before = runs[index - 1];
    if (before && run.first <= before.last) {
      say(`two runs alive at once: ${describeRun(before)} and ${describeRun(run)}`);
    }
  });
  if (runs.length === 0) say('no run was ever seen in /proc');
  return problems;
}

/** Runs that held one uid at the same time: each run must have its uid to itself. */
function sharedUids(sightings: readonly Sighting[]): string[] {
  const problems: string[] = [];
  const byUid = new Map<number, Sighting[]>();
  for (const run of sightings) {
    for (const uid of run.uids) byUid.set(uid, [...(byUid.get(uid) ?? []), run]);
  }
  for (const [uid, runs] of byUid) {
    const ordered = [...runs].sort((a, b) => a.first - b.first);
    ordered.forEach((run, index) => {
      const before = ordered[index - 1];
      if (before && run.first <= before.last) {
        problems.push(
          `uid ${uid} held by two runs at once: ${describeRun(before)} and ${describeRun(run)}`,
        );
      }
    });
  }
  return problems;
}

describe('workers killed at random while they run jobs', () => {
  const workers: WorkerProcess[] = [];
  afterEach(async () => {
    for (const worker of workers.splice(0)) {
      if (isRunning(worker)) worker.child.kill('SIGKILL');
      await worker.exited;
    }
  });

  it('every job completes, each attempt has one end, no job runs twice at once, no two runs share a uid', async () => {
    const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 32));
    const random = seeded(seed);
    const queueName = uniqueQueueName();
    const address: QueueAddress = { prefix: 'bull', queueName };
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    const redis = new Redis(redisUrl);
    const live = await listenToAllJobs(queueName);
    const began = Date.now();
    const chaos: string[] = [`seed ${seed}`];
    const note = (what: string): void => {
      chaos.push(`${((Date.now() - began) / 1000).toFixed(1)}s ${what}`);
    };
    const startWorker = (): WorkerProcess => {
      const worker = spawnWorkerProcess(workerEnv(queueName, 2));
      workers.push(worker);
      note(`started worker ${worker.pid}`);
      return worker;
    };
    const jobs: ChaosJob[] = Array.from({ length: JOBS }, () => ({
      id: randomUUID(),
      seconds: Math.round((0.5 + random() * 2.5) * 10) / 10,
    }));
    const watcher = watchRuns(new Set(jobs.map((job) => job.id)), 100);
    try {
      const first = Array.from({ length: WORKERS }, startWorker);
      await Promise.all(first.map((worker) => worker.waitForLog('worker ready')));
      for (const job of jobs) {
        await client.enqueue(
          { prompt: `sleep ${job.seconds}` },
          { jobId: job.id, attempts: ATTEMPTS },
        );
      }

      let kills = 0;
      while (kills < KILLS) {
        await sleep(500 + random() * 1000);
        const alive = workers.filter(isRunning);
        const busy = alive.filter(isBusy);
        const pool = busy.length > 0 ? busy : alive;
        const victim = pool[Math.floor(random() * pool.length)];
        if (!victim) break;
        victim.child.kill('SIGKILL');
        await victim.exited;
        kills++;
        note(`killed worker ${victim.pid} (${busy.includes(victim) ? 'busy' : 'idle'})`);
        await sleep(random() * 800);
        startWorker();
      }

      const results = await Promise.all(
        jobs.map((job) => client.result(job.id, { timeoutMs: 45_000 })),
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${chaos.join('\n')}`);
      });
      note('every job ended');
      // Nothing of any run is left once its job has ended.
      const leftovers = (): number[] =>
        liveRunProcesses()
          .filter((run) => jobs.some((job) => job.id === run.jobId))
          .map((run) => run.pid);
      expect(await eventually(() => leftovers().length === 0, 5000), chaos.join('\n')).toBe(true);
      watcher.stop();

      const problems: string[] = [];
      let abandoned = 0;
      let isolated = true;
      for (const [index, job] of jobs.entries()) {
        const history = (await readHistory(redis, address, job.id, 1, 10_000)).events;
        abandoned += history.filter(
          (event) => event.type === 'failed' && event.data.failure === 'abandoned',
        ).length;
        isolated &&= history.every(
          (event) => event.type !== 'started' || event.data.isolation?.mode === 'uid',
        );
        const sightings = [...watcher.runs.values()].filter((run) => run.jobId === job.id);
        const result = results[index] as ExecuteResult;
        problems.push(
          ...problemsOf(job, result, history, live.events.get(job.id) ?? [], sightings),
        );
      }
      // Unisolated (not root), every run is the worker's own uid.
      if (isolated) problems.push(...sharedUids([...watcher.runs.values()]));
      note(`${abandoned} attempts abandoned by ${kills} kills`);
      expect(problems, chaos.join('\n')).toEqual([]);
      expect(kills, chaos.join('\n')).toBe(KILLS);
      // The kills did hit running jobs, and the jobs lived through them.
      expect(abandoned, chaos.join('\n')).toBeGreaterThan(0);
    } finally {
      watcher.stop();
      await live.close();
      await redis.quit();
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  }, 90_000);

  it('fails a job with attempts: 2 whose workers were killed twice, with a final event and an ExecuteResult that say why', async () => {
    const queueName = uniqueQueueName();
    const client = createClient({ url: redisUrl, queueName });
    const queue = createQueue(redisUrl, queueName);
    const startWorker = (): WorkerProcess => {
      const worker = spawnWorkerProcess(workerEnv(queueName, 1));
      workers.push(worker);
      return worker;
    };
    try {
      const first = [startWorker(), startWorker()];
      await Promise.all(first.map((worker) => worker.waitForLog('worker ready')));
      const jobId = randomUUID();
      await client.enqueue({ prompt: 'sleep 30' }, { jobId, attempts: 2 });

      for (const attempt of [1, 2]) {
        const runner = await waitFor(`attempt ${attempt} to start`, () =>
          workers.find((worker) => isRunning(worker) && startedHere(worker, jobId, attempt)),
        );
        runner.child.kill('SIGKILL');
        await runner.exited;
        // Someone has to take the job over once its lock expires.
        startWorker();
      }

      const error =
        'attempt 2 was abandoned: its worker stopped or lost the job before the run ended; no attempts left (attempts: 2)';
      const result = await client.result(jobId, { timeoutMs: 30_000 });
      expect(result).toMatchObject({
        jobId,
        attempt: 2,
        success: false,
        failure: 'abandoned',
        error,
        retrying: false,
        exitCode: null,
      });
      expect(await queue.getJobState(jobId)).toBe('failed');
      const job = await queue.getJob(jobId);
      expect(job?.failedReason).toBe(error);
      expect(readRunState(job?.progress)?.result).toEqual(result);

      // The history ends with the final event, which carries that same result.
      const events = await collectEvents(client.events(jobId));
      const seqs = events.map((event) => event.seq);
      expect(seqs).toEqual(seqs.map((_, index) => index + 1));
      expect(
        events.filter((event) => event.type !== 'output').map((e) => `${e.attempt}:${e.type}`),
      ).toEqual(['1:started', '1:failed', '2:started', '2:failed']);
      const [abandoned, final] = events.filter(isTerminalEvent);
      expect(abandoned?.data).toMatchObject({ attempt: 1, failure: 'abandoned', retrying: true });
      expect(final).toBe(events.at(-1));
      expect(final?.data).toEqual(result);
      expect(result.lastSeq).toBe(final?.seq);

      // No third run: the worker that ended the job started no CLI for it.
      const starts = workers.flatMap((worker) =>
        worker.logs.filter((log) => log.msg === 'job started' && log.jobId === jobId),
      );
      expect(starts.map((log) => log.attempt).sort()).toEqual([1, 2]);
      expect(
        await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 3000),
      ).toBe(true);
    } finally {
      await client.close();
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });
});
