/**
 * The baseline of the job figures: a bare BullMQ Worker that spawns the CLI with the job's
 * prompt on stdin, reads its stdout line by line and PUBLISHes each line (auto-pipelined, no
 * history, no result parsing, no isolation) on the channel claudebox uses, as the same JSON
 * envelope shape. It does the work claudebox does for a job minus claudebox.
 *
 *   REDIS_URL=... QUEUE_NAME=... CONCURRENCY=8 CLAUDE_BIN=bench/fake-claude tsx bench/baselines/bare-worker.ts
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const queueName = env('QUEUE_NAME');
const claude = env('CLAUDE_BIN');
const publisher = new Redis(env('REDIS_URL'), { enableAutoPipelining: true });

async function run(job: Job<{ prompt: string }>): Promise<{ exitCode: number | null }> {
  const jobId = job.id ?? '';
  // BullMQ's default prefix, which the benchmark's claudebox worker has too.
  const channel = `bull:${queueName}:events:${jobId}`;
  const child = spawn(claude, ['-p', '--output-format', 'stream-json', '--verbose'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(job.data.prompt);
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let seq = 0;
  let published: Promise<unknown> = Promise.resolve();
  for await (const content of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
    const event = { jobId, seq: ++seq, type: 'output', stream: 'stdout', content };
    published = publisher.publish(channel, JSON.stringify(event));
  }
  // Pipelined commands answer in order: the last one answered means every one was.
  await published;
  return { exitCode: await exited };
}

const worker = new Worker(queueName, run, {
  connection: new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null }),
  concurrency: Number(process.env.CONCURRENCY ?? 1),
});
await worker.waitUntilReady();
console.log('ready');
process.once('SIGTERM', () => {
  void worker
    .close()
    .then(() => publisher.quit())
    .then(() => process.exit(0));
});
