import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { readProcStat } from '../src/common/proc-stat.js';
import { procStatusBytes, type BenchWorker } from './processes.js';
import { readCounters } from './redis-counters.js';
import { prompts } from './runs.js';

/** The processes started under `pid`, at any depth (the runs' CLIs and their wrappers). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    // Undefined when it ended while the table was read.
    const ppid = readProcStat(Number(entry))?.ppid;
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  for (let next = [pid]; next.length > 0;) {
    next = next.flatMap((p) => children.get(p) ?? []);
    found.push(...next);
  }
  return found;
}

const rssOf = (pids: readonly number[]): number =>
  pids.reduce((sum, pid) => {
    try {
      return sum + procStatusBytes(pid, 'VmRSS');
    } catch {
      return sum;
    }
  }, 0);

export interface RunMemory {
  readonly workerIdle: number;
  readonly workerBusy: number;
  /** What the runs' processes (the fake CLI here) hold together. */
  readonly children: number;
  readonly runs: number;
}

/** The worker's RSS idle and with `runs` runs active at once (its concurrency), and theirs. */
export async function memoryPerRun(
  queue: Queue,
  worker: BenchWorker,
  runs: number,
): Promise<RunMemory> {
  await sleep(1000);
  const workerIdle = procStatusBytes(worker.pid, 'VmRSS');
  // Each run prints a line every 100 ms for 15 s: all are active while they are measured.
  const job = { name: 'execute', data: { prompt: prompts.lines(150, undefined, 10) } };
  await queue.addBulk(Array.from({ length: runs }, () => job));
  while ((await queue.getActiveCount()) < runs) await sleep(100);
  await sleep(3000);
  const workerBusy = procStatusBytes(worker.pid, 'VmRSS');
  const children = rssOf(descendants(worker.pid));
  while ((await queue.getActiveCount()) > 0) await sleep(200);
  return { workerIdle, workerBusy, children, runs };
}

/** Events/s and Redis's share of one core while `jobs` jobs print `lines` lines each at once. */
export async function saturation(redisUrl: string, queue: Queue, jobs: number, lines: number) {
  const redis = new Redis(redisUrl);
  const watcher = new Redis(redisUrl);
  let events = 0;
  watcher.on('pmessage', () => events++);
  try {
    await watcher.psubscribe(`${queue.qualifiedName}:events:*`);
    await queue.clean(0, 1_000_000, 'completed');
    const before = await readCounters(redis);
    const started = performance.now();
    const job = { name: 'execute', data: { prompt: prompts.lines(lines) } };
    await queue.addBulk(Array.from({ length: jobs }, () => job));
    while ((await queue.getCompletedCount()) < jobs) await sleep(100);
    const seconds = (performance.now() - started) / 1000;
    const after = await readCounters(redis);
    return {
      eventsPerSecond: events / seconds,
      redisCoreShare: (after.cpuSeconds - before.cpuSeconds) / seconds,
    };
  } finally {
    redis.disconnect();
    watcher.disconnect();
  }
}
