import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { readProcStatFields } from '../src/common/proc-stat.js';
import { readCounters } from './redis-counters.js';

/** The clock ticks a second of the CPU times in /proc (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** ms of CPU per job, by who spent it. */
export interface JobCpu {
  /** The worker process itself. */
  readonly worker: number;
  /** Processes the worker collected when they ended: its runs' (the CLI and what wraps it). */
  readonly collected: number;
  readonly redis: number;
  /** The benchmark's own process: enqueueing the jobs and asking how many completed. */
  readonly bench: number;
  /** Everything else the machine did meanwhile (processes another parent collected, the kernel). */
  readonly rest: number;
}

interface Reading {
  readonly worker: number;
  readonly collected: number;
  readonly redis: number;
  readonly bench: number;
  readonly machine: number;
}

/** CPU seconds of `pid` so far: its own, and those of the children it collected. */
function processCpu(pid: number): { own: number; collected: number } {
  // utime, stime, cutime and cstime: fields 14 to 17 of proc(5).
  const [utime = NaN, stime = NaN, cutime = NaN, cstime = NaN] = (readProcStatFields(pid) ?? [])
    .slice(11, 15)
    .map(Number);
  return { own: (utime + stime) / TICKS, collected: (cutime + cstime) / TICKS };
}

/** CPU seconds every core of the machine spent busy so far (user, nice, system, irq, softirq, steal). */
function machineBusy(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user = NaN, nice = NaN, system = NaN, , , irq = NaN, softirq = NaN, steal = 0] = cpu
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / TICKS;
}

async function read(pid: number, redis: Redis): Promise<Reading> {
  const worker = processCpu(pid);
  const bench = process.cpuUsage();
  return {
    worker: worker.own,
    collected: worker.collected,
    redis: (await readCounters(redis)).cpuSeconds,
    bench: (bench.user + bench.system) / 1e6,
    machine: machineBusy(),
  };
}

/**
 * What `measure` cost the machine per job, as the kernel and Redis count CPU time: `measure`
 * returns how many jobs it ran. Meant for a machine given over to the benchmark.
 */
export async function cpuPerJob<T extends { readonly completed: number }>(
  workerPid: number,
  redisUrl: string,
  measure: () => Promise<T>,
): Promise<{ result: T; cpu: JobCpu }> {
  const redis = new Redis(redisUrl);
  try {
    const before = await read(workerPid, redis);
    const result = await measure();
    const after = await read(workerPid, redis);
    const perJob = (key: keyof Reading) => ((after[key] - before[key]) * 1000) / result.completed;
    const cpu = {
      worker: perJob('worker'),
      collected: perJob('collected'),
      redis: perJob('redis'),
      bench: perJob('bench'),
    };
    const known = cpu.worker + cpu.collected + cpu.redis + cpu.bench;
    return { result, cpu: { ...cpu, rest: perJob('machine') - known } };
  } finally {
    redis.disconnect();
  }
}
