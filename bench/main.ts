/**
 * claudebox beside hand-written baselines, on a private redis-server: Redis memory per job,
 * events/s, line -> subscriber latency, jobs/s at concurrency 1 and 8, and the worker's peak
 * RSS during a large run. Prints one Markdown table; see "Benchmark" in the README.
 *
 *   npm run bench [-- --quick] [-- --cpu-prof]   (profiles of every worker in bench/profiles/)
 *   npm run bench -- --run-ms 100: each run of the jobs/s figures lasts 100 ms
 *   npm run bench -- --redis-cost [--quick]: the figures of docs/scaling.md instead
 */
import { availableParallelism } from 'node:os';
import { startPrivateRedis } from '../tools/demo/private-redis.js';
import { buildIfStale, startBare, startClaudebox } from './processes.js';
import {
  eventsPerSecondInTurns,
  FLOOD_LINE_BYTES,
  jobsPerSecond,
  jobsPerSecondWithCpu,
  latencyP99InTurns,
  LINE_BYTES,
  memoryPerJob,
  peakRss,
  withWorker,
  withWorkers,
  type Sizes,
  type Start,
} from './runs.js';
import type { JobCpu } from './job-cpu.js';
import type { JobMemory } from './redis-memory.js';
import { measureScaling, renderScaling, type ScalingSizes } from './scaling.js';
import { megabytes, milliseconds, perSecond, renderTable, type Row } from './table.js';

const quick = process.argv.includes('--quick');
/** `--run-ms N`: each run of the jobs/s figures lasts N ms, as a run that waits on its model. */
function runMsOption(argv: readonly string[]): number {
  const at = argv.findIndex((arg) => arg === '--run-ms' || arg.startsWith('--run-ms='));
  if (at < 0) return 0;
  const given = argv[at]?.split('=')[1] ?? argv[at + 1];
  const ms = Number(given);
  if (!/^\d+$/.test(given ?? '') || ms <= 0) {
    throw new Error(
      `--run-ms takes a whole number of milliseconds above 0 (e.g. --run-ms 100), not ${given ?? 'nothing'}`,
    );
  }
  return ms;
}
const runMs = runMsOption(process.argv);
const scalingSizes: ScalingSizes = {
  pacedLines: quick ? 400 : 1000,
  floodLines: quick ? 5000 : 20_000,
  jobs: quick ? 100 : 300,
  concurrentRuns: quick ? 8 : 16,
  saturationJobs: 8,
  saturationLines: quick ? 2000 : 5000,
};
const sizes: Sizes = quick
  ? {
      memoryLines: 5243,
      // Fewer lines would measure how fast a run starts: they come out within a few ms.
      eventLines: 20_000,
      eventTurns: 3,
      jobs: 100,
      latencyLines: 1000,
      latencyTurns: 2,
      floodMiB: 128,
      // Runs that last leave too few jobs to count in 1 s at concurrency 1.
      jobSeconds: runMs ? 3 : 1,
      runMs,
    }
  : {
      memoryLines: 5243,
      eventLines: 20_000,
      eventTurns: 5,
      jobs: 600,
      latencyLines: 10_000,
      latencyTurns: 5,
      floodMiB: 1024,
      jobSeconds: 15,
      runMs,
    };

const cpuProf = process.argv.includes('--cpu-prof')
  ? ['--cpu-prof', `--cpu-prof-dir=${new URL('profiles', import.meta.url).pathname}`]
  : [];

let queues = 0;
const settings = (redisUrl: string, concurrency: number, env?: Record<string, string>) => ({
  redisUrl,
  queueName: `bench${++queues}`,
  concurrency,
  nodeArgs: cpuProf,
  ...(env ? { env } : {}),
});

/**
 * Every figure. claudebox and the bare worker at concurrency 8 run side by side, so that their
 * latency is measured in turns, claudebox's run then the bare one's, several times: a machine
 * whose load drifts weighs on both alike. The rest is measured one worker after the other.
 */
async function measureAll(redisUrl: string) {
  const [mine, bare] = await withWorkers(
    [startClaudebox, settings(redisUrl, 8)],
    [startBare, settings(redisUrl, 8)],
    async (mineSide, bareSide) => {
      const queues = [mineSide.queue, bareSide.queue];
      const [mineLatency = NaN, bareLatency = NaN] = await latencyP99InTurns(
        redisUrl,
        queues,
        sizes,
      );
      const [mineEvents = NaN, bareEvents = NaN] = await eventsPerSecondInTurns(
        redisUrl,
        queues,
        sizes,
      );
      return [
        {
          latencyP99Ms: mineLatency,
          eventsPerSecond: mineEvents,
          memory: await memoryPerJob(redisUrl, mineSide.queue, sizes),
          jobs: await jobsPerSecondWithCpu(redisUrl, mineSide, sizes),
        },
        {
          latencyP99Ms: bareLatency,
          eventsPerSecond: bareEvents,
          jobs: await jobsPerSecondWithCpu(redisUrl, bareSide, sizes),
        },
      ] as const;
    },
  );
  const jobs = (start: Start, concurrency: number, env?: Record<string, string>) =>
    withWorker(start, settings(redisUrl, concurrency, env), (queue) => jobsPerSecond(queue, sizes));
  const mineC1 = await jobs(startClaudebox, 1);
  const bareC1 = await jobs(startBare, 1);
  // What isolation costs is worth a line, not the time of --quick.
  const off = { RUN_ISOLATION: 'off' };
  const offC8 = quick ? null : await jobs(startClaudebox, 8, off);
  const offC1 = quick ? null : await jobs(startClaudebox, 1, off);
  // The uid alone: how runs are isolated where namespaces are refused (Docker's default seccomp).
  const uidOnlyC8 = quick ? null : await jobs(startClaudebox, 8, { RUN_NAMESPACES: 'off' });
  const rss = await withWorker(startClaudebox, settings(redisUrl, 1), (queue, worker) =>
    peakRss(queue, worker, sizes),
  );
  return { mine, bare, mineC1, bareC1, offC8, offC1, uidOnlyC8, rss };
}

const rate = (figure: string, claudebox: number, baseline: number, ratio?: number): Row => ({
  figure,
  claudebox,
  baseline,
  format: perSecond,
  ...(ratio === undefined ? {} : { target: { op: '>=', ratio } }),
});

/** What each kind of isolation costs, in a full run (--quick leaves it out). */
function isolationRows(
  { offC1, offC8, uidOnlyC8 }: Awaited<ReturnType<typeof measureAll>>,
  bareC1: number,
  bareC8: number,
): Row[] {
  if (offC1 === null || offC8 === null || uidOnlyC8 === null) return [];
  return [
    rate(`jobs/s, RUN_ISOLATION=off, concurrency 1 (vs bare c1)`, offC1, bareC1),
    rate(`jobs/s, RUN_ISOLATION=off, concurrency 8 (vs bare c8)`, offC8, bareC8),
    rate(
      `jobs/s, RUN_NAMESPACES=off (the uid alone), concurrency 8 (vs bare c8)`,
      uidOnlyC8,
      bareC8,
    ),
  ];
}

function rows(figures: Awaited<ReturnType<typeof measureAll>>): Row[] {
  const { mine, bare, mineC1, bareC1, rss } = figures;
  const outputBytes = sizes.memoryLines * LINE_BYTES;
  return [
    {
      figure: `Redis memory per job, a run printing ${megabytes(outputBytes)} (baseline: its output)`,
      claudebox: mine.memory.total,
      baseline: outputBytes,
      format: megabytes,
      target: { op: '<=', ratio: 2.5 },
    },
    rate(
      `events/s, one job printing ${sizes.eventLines} lines of ${LINE_BYTES} bytes (median of ${sizes.eventTurns}, in turns)`,
      mine.eventsPerSecond,
      bare.eventsPerSecond,
      0.9,
    ),
    {
      figure: `line → subscriber latency p99, ${sizes.latencyLines} lines at 1,000 lines/s`,
      claudebox: mine.latencyP99Ms,
      baseline: bare.latencyP99Ms,
      format: milliseconds,
      target: { op: '<=', ratio: 1.2 },
    },
    rate(
      `jobs/s, ${sizes.jobs} jobs of 2 lines${runMs ? `, each run lasting ${runMs} ms` : ''} (or what ${sizes.jobSeconds} s finish), concurrency 1`,
      mineC1,
      bareC1,
    ),
    rate(`jobs/s, same, concurrency 8`, mine.jobs.perSecond, bare.jobs.perSecond, 0.5),
    rate(
      `jobs/s scaling: claudebox c8 (claudebox) vs c1 (baseline)`,
      mine.jobs.perSecond,
      mineC1,
      3,
    ),
    rate(
      `jobs/s scaling of the bare worker: c8 (claudebox column) vs c1`,
      bare.jobs.perSecond,
      bareC1,
    ),
    ...isolationRows(figures, bareC1, bare.jobs.perSecond),
    {
      figure: `worker peak RSS while a run prints ${sizes.floodMiB} MiB in ${FLOOD_LINE_BYTES}-byte lines (baseline: idle RSS)`,
      claudebox: rss.peak,
      baseline: rss.idle,
      format: megabytes,
      target: { op: '<=', ratio: 1.5 },
    },
  ];
}

/**
 * Where a job's CPU went at concurrency 8, for each worker, and the job rate that CPU allows on
 * this machine's cores: with that CPU a job, the most concurrency 8 can reach, and so the most
 * it can gain over the worker's concurrency 1.
 */
function jobCpu(mine: JobCpu, bare: JobCpu, mineC1: number, bareC1: number): string {
  const cores = availableParallelism();
  const parts = (cpu: JobCpu, c1: number) => {
    const total = cpu.worker + cpu.collected + cpu.redis + cpu.bench + cpu.rest;
    const ceiling = (cores * 1000) / total;
    return [
      `worker ${milliseconds(cpu.worker)}`,
      `processes it collected ${milliseconds(cpu.collected)}`,
      `Redis ${milliseconds(cpu.redis)}`,
      `benchmark ${milliseconds(cpu.bench)}`,
      `rest of the machine ${milliseconds(cpu.rest)}`,
      `in all ${milliseconds(total)}, which ${cores} cores allow ${perSecond(ceiling)} at most, ${(ceiling / c1).toFixed(2)}× the rate at concurrency 1`,
    ].join(', ');
  };
  return `CPU per job at concurrency 8: claudebox ${parts(mine, mineC1)}; bare ${parts(bare, bareC1)}`;
}

function breakdown({ memory }: { memory: JobMemory }): string {
  const parts = [
    `history ${megabytes(memory.history)}`,
    `job hash ${megabytes(memory.jobHash)}`,
    `BullMQ events stream +${megabytes(memory.bullEvents)}`,
    `other keys ${megabytes(memory.other)}`,
  ];
  return `Redis memory of the job: ${parts.join(', ')}`;
}

buildIfStale();
const started = performance.now();
const redis = await startPrivateRedis();
try {
  if (process.argv.includes('--redis-cost')) {
    console.log(renderScaling(await measureScaling(redis.url, scalingSizes)));
  } else {
    const figures = await measureAll(redis.url);
    console.log(renderTable(rows(figures)));
    console.log(breakdown(figures.mine));
    console.log(
      jobCpu(figures.mine.jobs.cpu, figures.bare.jobs.cpu, figures.mineC1, figures.bareC1),
    );
  }
  console.log(
    `${quick ? '--quick sizes' : 'full sizes'}, ${((performance.now() - started) / 1000).toFixed(0)} s; worker isolation ${process.getuid?.() === 0 ? 'on (root)' : 'off (not root)'} unless the row says otherwise`,
  );
} finally {
  await redis.close();
}
