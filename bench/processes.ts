import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = new URL('../', import.meta.url).pathname;
export const fakeClaude = join(root, 'bench/fake-claude');

/** A worker process of the benchmark: claudebox's or the bare baseline's. */
export interface BenchWorker {
  readonly pid: number;
  readonly queueName: string;
  stop(): Promise<void>;
}

export interface WorkerSettings {
  readonly redisUrl: string;
  readonly queueName: string;
  readonly concurrency: number;
  /** Extra variables (RUN_ISOLATION=off). */
  readonly env?: Record<string, string>;
  /** Options for node itself (--cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

/** `claudebox worker` from the build, as `npm start` runs it, once it logged "worker ready". */
export function startClaudebox(settings: WorkerSettings): Promise<BenchWorker> {
  const args = [...(settings.nodeArgs ?? []), join(root, 'dist/cli/main.js'), 'worker'];
  return startWorker(args, settings, (line) => line.includes('"msg":"worker ready"'));
}

/** The bare BullMQ baseline (bench/baselines/bare-worker.ts), once it said "ready". */
export function startBare(settings: WorkerSettings): Promise<BenchWorker> {
  const args = [
    ...(settings.nodeArgs ?? []),
    '--import',
    'tsx',
    join(root, 'bench/baselines/bare-worker.ts'),
  ];
  return startWorker(args, settings, (line) => line === 'ready');
}

async function startWorker(
  args: string[],
  { redisUrl, queueName, concurrency, env = {} }: WorkerSettings,
  isReady: (line: string) => boolean,
): Promise<BenchWorker> {
  const home = mkdtempSync(join(tmpdir(), 'claudebox-bench-home-'));
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HEALTH_PORT: '0',
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CONCURRENCY: String(concurrency),
      CLAUDE_BIN: fakeClaude,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The worker's home goes with it, however it ends.
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      rmSync(home, { recursive: true, force: true });
      resolve();
    }),
  );
  await ready(child, isReady);
  return {
    pid: child.pid ?? 0,
    queueName,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Resolves on the line `isReady` accepts; rejects, with what it printed, if it exits first. */
function ready(child: ChildProcess, isReady: (line: string) => boolean): Promise<void> {
  let said = '';
  return new Promise((resolve, reject) => {
    // The worker logs every job: keep reading its output, or it blocks on a full pipe.
    child.stdout?.on('data', (chunk: Buffer) => {
      said += chunk.toString();
      if (said.split('\n').some(isReady)) {
        said = '';
        resolve();
      }
      said = said.slice(-4096);
    });
    child.stderr?.on('data', (chunk: Buffer) => (said += chunk.toString()));
    child.once('exit', (code) => {
      reject(new Error(`worker exited with ${code} before it was ready: ${said.slice(-2000)}`));
    });
  });
}

/** A kB figure of /proc/<pid>/status (VmRSS, VmHWM), in bytes. */
export function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
}

/** Builds dist/ when a file of src/ is newer than the build the worker would run. */
export function buildIfStale(): void {
  const built = statSync(join(root, 'dist/cli/main.js'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  const src = join(root, 'src');
  const newest = readdirSync(src, { recursive: true, encoding: 'utf8' })
    .map((file) => statSync(join(src, file)).mtimeMs)
    .reduce((a, b) => Math.max(a, b), 0);
  if (newest <= built) return;
  console.error('dist/ is older than src/: npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}
