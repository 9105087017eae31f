/**
 * What docs/scaling.md is computed from: Redis commands, bytes and CPU per event and per job,
 * an idle worker's cost, worker memory per concurrent run and one saturation run.
 *
 *   npm run bench -- --redis-cost [--quick]
 */
import { memoryPerRun, saturation } from './concurrency.js';
import { startClaudebox, type WorkerSettings } from './processes.js';
import type { RedisCounters } from './redis-counters.js';
import { eventCost, idleCost, jobCost } from './redis-cost.js';
import { memoryPerJob, withWorker } from './runs.js';

export interface ScalingSizes {
  readonly pacedLines: number;
  readonly floodLines: number;
  readonly jobs: number;
  readonly concurrentRuns: number;
  readonly saturationJobs: number;
  readonly saturationLines: number;
}

const PACED_RATE = 200;

/** Every figure of the scaling model, on workers of their own. */
export async function measureScaling(redisUrl: string, sizes: ScalingSizes) {
  let queues = 0;
  const settings = (concurrency: number): WorkerSettings => ({
    redisUrl,
    queueName: `scaling${++queues}`,
    concurrency,
  });
  const paced = (subscribers: number) => ({
    lines: sizes.pacedLines,
    rate: PACED_RATE,
    subscribers,
  });
  const cost = await withWorker(startClaudebox, settings(8), async (queue) => ({
    idle: await idleCost(redisUrl, 5),
    paced: await eventCost(redisUrl, queue, paced(1)),
    pacedWatched: await eventCost(redisUrl, queue, paced(3)),
    flood: await eventCost(redisUrl, queue, { lines: sizes.floodLines, rate: 0, subscribers: 1 }),
    job: await jobCost(redisUrl, queue, sizes.jobs),
    history: (await memoryPerJob(redisUrl, queue, { memoryLines: sizes.pacedLines })).history,
  }));
  const runs = await withWorker(startClaudebox, settings(sizes.concurrentRuns), (queue, worker) =>
    memoryPerRun(queue, worker, sizes.concurrentRuns),
  );
  const saturated = await withWorker(startClaudebox, settings(sizes.saturationJobs), (queue) =>
    saturation(redisUrl, queue, sizes.saturationJobs, sizes.saturationLines),
  );
  return { cost, runs, saturated, sizes };
}

type Scaling = Awaited<ReturnType<typeof measureScaling>>;

const counters = (what: string, c: RedisCounters): string =>
  `| ${what} | ${c.calls.toFixed(2)} | ${c.bytesIn.toFixed(0)} | ${c.bytesOut.toFixed(0)} | ${(c.cpuSeconds * 1e6).toFixed(1)} |`;

/** The figures as Markdown, as docs/scaling.md quotes them. */
export function renderScaling({ cost, runs, saturated, sizes }: Scaling): string {
  const extra = (key: keyof RedisCounters) => (cost.pacedWatched[key] - cost.paced[key]) / 2;
  const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
  return [
    '| Redis cost | commands | bytes in | bytes out | CPU µs |',
    '|---|---|---|---|---|',
    counters(`per event, ${sizes.pacedLines} lines at ${PACED_RATE}/s, 1 subscriber`, cost.paced),
    counters(`per event, ${sizes.floodLines} lines at full speed, 1 subscriber`, cost.flood),
    `| per event, each further subscriber | ${extra('calls').toFixed(2)} | ${extra('bytesIn').toFixed(0)} | ${extra('bytesOut').toFixed(0)} | ${(extra('cpuSeconds') * 1e6).toFixed(1)} |`,
    counters(
      `per job of 2 lines (its events included), ${sizes.jobs} jobs, concurrency 8`,
      cost.job,
    ),
    counters('per second, Redis with one idle worker', cost.idle),
    '',
    `history memory per event (${sizes.pacedLines}-line job): ${(cost.history / (sizes.pacedLines + 2)).toFixed(0)} bytes`,
    `worker RSS idle ${mb(runs.workerIdle)}, with ${runs.runs} runs active ${mb(runs.workerBusy)}: ${mb((runs.workerBusy - runs.workerIdle) / runs.runs)} per run; the runs' CLI processes ${mb(runs.children / runs.runs)} each`,
    `saturation: ${sizes.saturationJobs} jobs printing ${sizes.saturationLines} lines at once: ${Math.round(saturated.eventsPerSecond)} events/s with Redis at ${(saturated.redisCoreShare * 100).toFixed(0)}% of one core`,
  ].join('\n');
}
