import { mkdtempSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { randomInt, randomUUID } from 'node:crypto';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/config/logger.js';
import { testQueuePrefix } from './test-run.js';
import {
  startWorker,
  type ClaudeboxWorker,
  type WorkerDeps,
} from '../../src/worker/runtime/worker.js';
import type { ExecuteEvent } from '../../src/contract/index.js';

export const fixture = (name: string): string =>
  new URL(`../fixtures/bin/${name}`, import.meta.url).pathname;

/**
 * A queue name of its own per test, so tests share one Redis without seeing each other. It
 * starts with the test run's own prefix (see testQueuePrefix), by which the run's end finds what
 * its jobs left in the runs' default RUN_ROOT.
 */
export const uniqueQueueName = (): string => `${testQueuePrefix()}${randomUUID().slice(0, 8)}`;

export interface TestWorker {
  readonly worker: ClaudeboxWorker;
  readonly logs: Record<string, unknown>[];
  readonly workDir: string;
}

/** An in-process worker on the test's Redis, with its log records collected. */
export async function startTestWorker(options: {
  readonly redisUrl: string;
  readonly queueName: string;
  readonly claudeBin: string;
  readonly env?: Record<string, string>;
  readonly workDir?: string;
  readonly spanExporter?: SpanExporter;
  readonly setUpIsolation?: WorkerDeps['setUpIsolation'];
}): Promise<TestWorker> {
  const workDir = await realpath(options.workDir ?? mkdtempSync(join(tmpdir(), 'claudebox-work-')));
  const env = {
    PATH: process.env.PATH,
    HOME: mkdtempSync(join(tmpdir(), 'claudebox-home-')),
    REDIS_URL: options.redisUrl,
    QUEUE_NAME: options.queueName,
    CLAUDE_BIN: options.claudeBin,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'debug',
    KILL_GRACE_SECONDS: '0.5',
    ...options.env,
  };
  const config = loadConfig(env);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const worker = await startWorker({
    config,
    env,
    logger: createLogger(config.LOG_LEVEL, sink),
    claude: { path: options.claudeBin, source: 'CLAUDE_BIN' },
    workDir,
    ...(options.spanExporter ? { spanExporter: options.spanExporter } : {}),
    ...(options.setUpIsolation ? { setUpIsolation: options.setUpIsolation } : {}),
  });
  return { worker, logs, workDir };
}

/** Collects a job's events from its pub/sub channel, as a dashboard would. */
export async function subscribeToEvents(
  redisUrl: string,
  queueName: string,
  jobId: string,
): Promise<{ events: ExecuteEvent[]; close: () => Promise<void> }> {
  const subscriber = new Redis(redisUrl);
  const events: ExecuteEvent[] = [];
  subscriber.on('message', (_channel: string, message: string) => {
    events.push(JSON.parse(message) as ExecuteEvent);
  });
  // The default QUEUE_PREFIX, as every worker these tests start has.
  await subscriber.subscribe(`bull:${queueName}:events:${jobId}`);
  return {
    events,
    close: async () => {
      await subscriber.quit();
    },
  };
}

export function createQueue(redisUrl: string, queueName: string): Queue {
  return new Queue(queueName, { connection: { url: redisUrl } });
}

/** Every event an iteration gives, pushed into `into` as they come (so a test can peek early). */
export async function collectEvents(
  iterable: AsyncIterable<ExecuteEvent>,
  into: ExecuteEvent[] = [],
): Promise<ExecuteEvent[]> {
  for await (const event of iterable) into.push(event);
  return into;
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs are found in /proc by their job id, and BullMQ numbers every queue's jobs from 1: a queue
 * whose jobs get BullMQ's ids (`claudebox run`, say) starts counting at a random point, so that
 * no two tests running at once have a job of the same id.
 */
export async function numberJobsApart(redisUrl: string, queue: Queue): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    await redis.set(`${queue.qualifiedName}:id`, String(randomInt(1_000_000, 1_000_000_000)));
  } finally {
    await redis.quit();
  }
}

/** A labelled gauge's value on the worker's /metrics (`part`: its label), if it has one. */
export async function partGauge(
  worker: TestWorker,
  metric: string,
  part: string,
): Promise<number | undefined> {
  const text = await fetch(`${worker.worker.healthUrl ?? ''}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((entry) => entry.startsWith(`${metric}{part="${part}"}`));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
