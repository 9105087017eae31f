/**
 * How far behind a run's session transcript is in Redis, and what shipping it costs: a writer
 * appends a stream-json-sized line to a transcript 1,000 times a second while the worker's
 * shipper sends it to a private redis-server every SESSION_SYNC_SECONDS (the default, 0.25 s).
 * Lag is write -> byte count in Redis covers the line. CPU is this process's, against a
 * baseline run in the same process with the same writer and poller and no shipper.
 *
 *   npm run bench:transcripts [-- --seconds 10]
 */
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { sessionKey } from '../src/contract/index.js';
import { startPrivateRedis } from '../tools/demo/private-redis.js';
import { RedisTranscripts, SessionStore } from '../src/worker/sessions/sessions.js';

const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg === -1 ? 10 : Number(process.argv[secondsArg + 1]);
const LINES_PER_SECOND = 1000;
const SYNC_MS = 250;
const line = `${JSON.stringify({ type: 'assistant', message: { role: 'assistant', content: [{ type: 'text', text: 'x'.repeat(220) }] } })}\n`;

interface Figures {
  readonly lagMs: number[];
  readonly cpuMs: number;
  /** Wall time spent inside the shipper's calls (an upper bound on its own cpu time). */
  readonly shipMs: number;
  readonly ships: number;
}

async function measure(redisUrl: string, ship: boolean): Promise<Figures> {
  const redis = new Redis(redisUrl);
  const address = { prefix: 'bench', queueName: `q${Date.now()}` };
  const store = new SessionStore(new RedisTranscripts(redis, address, 3600), 256 * 1024 * 1024);
  const configDir = mkdtempSync(join(tmpdir(), 'claudebox-bench-'));
  const sessionId = crypto.randomUUID();
  const dir = join(configDir, 'projects', '-bench-repo');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${sessionId}.jsonl`);
  appendFileSync(path, line);

  // A new session: the store holds none of it yet.
  const shipper = store.shipper({ scope: '', sessionId }, { configDir, cwd: '/bench/repo' }, 0);
  const shipping = ship ? startShipping(shipper) : null;
  const cpuStart = process.cpuUsage();
  const deadline = performance.now() + SECONDS * 1000;
  const written: Written[] = [];
  const [, lagMs] = await Promise.all([
    write(path, written, deadline),
    observe(redis, sessionKey(address, sessionId), written, deadline),
  ]);
  const shipped = (await shipping?.stop()) ?? { shipMs: 0, ships: 0 };
  const cpu = process.cpuUsage(cpuStart);
  await redis.quit();
  return { lagMs, cpuMs: (cpu.user + cpu.system) / 1000, ...shipped };
}

/** A line appended: the transcript's size after it, and when. */
interface Written {
  readonly end: number;
  readonly at: number;
}

/** The shipper every SYNC_MS, as the worker runs it, timed. */
function startShipping(shipper: { ship(): Promise<void> }): {
  stop(): Promise<{ shipMs: number; ships: number }>;
} {
  let shipping: Promise<void> = Promise.resolve();
  let shipMs = 0;
  let ships = 0;
  const timed = async (): Promise<void> => {
    const from = performance.now();
    await shipper.ship();
    shipMs += performance.now() - from;
    ships++;
  };
  const timer = setInterval(() => {
    shipping = shipping.then(timed);
  }, SYNC_MS);
  return {
    stop: async () => {
      clearInterval(timer);
      await shipping;
      return { shipMs, ships };
    },
  };
}

/** The writer: LINES_PER_SECOND lines a second, in 10 ms batches, until the deadline. */
async function write(path: string, written: Written[], deadline: number): Promise<void> {
  const started = performance.now();
  let bytes = line.length;
  while (performance.now() < deadline) {
    const due = Math.floor(((performance.now() - started) / 1000) * LINES_PER_SECOND);
    while (written.length < due) {
      appendFileSync(path, line);
      bytes += line.length;
      written.push({ end: bytes, at: performance.now() });
    }
    await sleep(10);
  }
}

/** The observer: when Redis got each line; the lag of each, in ms. */
async function observe(
  redis: Redis,
  key: string,
  written: readonly Written[],
  deadline: number,
): Promise<number[]> {
  const lagMs: number[] = [];
  let seen = 0;
  while (
    performance.now() < deadline + 2000 &&
    (seen < written.length || performance.now() < deadline)
  ) {
    const stored = Number((await redis.hget(key, 'bytes')) ?? 0);
    const now = performance.now();
    while (seen < written.length && (written[seen]?.end ?? Infinity) <= stored) {
      lagMs.push(now - (written[seen]?.at ?? now));
      seen++;
    }
    await sleep(5);
  }
  return lagMs;
}

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

const redis = await startPrivateRedis();
try {
  const baseline = await measure(redis.url, false);
  const shipped = await measure(redis.url, true);
  const lines = SECONDS * LINES_PER_SECOND;
  console.log(
    `transcript shipping, ${lines} lines of ${line.length} bytes over ${SECONDS}s, sync every ${SYNC_MS} ms`,
  );
  console.log(
    `lag write -> Redis: p50 ${percentile(shipped.lagMs, 50).toFixed(0)} ms, p99 ${percentile(shipped.lagMs, 99).toFixed(0)} ms, max ${Math.max(...shipped.lagMs).toFixed(0)} ms (${shipped.lagMs.length} lines seen)`,
  );
  console.log(
    `shipper: ${shipped.ships} calls, ${(shipped.shipMs / shipped.ships).toFixed(2)} ms each, ${(shipped.shipMs / SECONDS).toFixed(1)} ms of every second (wall time, an upper bound on its cpu)`,
  );
  console.log(
    `process cpu: baseline ${baseline.cpuMs.toFixed(0)} ms, with shipping ${shipped.cpuMs.toFixed(0)} ms: shipping costs ${((shipped.cpuMs - baseline.cpuMs) / SECONDS).toFixed(1)} ms of cpu a second (${(shipped.cpuMs / baseline.cpuMs).toFixed(2)}x the baseline)`,
  );
} finally {
  await redis.close();
}
