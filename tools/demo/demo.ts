import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  bundledBinary,
  createClient,
  createLogger,
  loadConfig,
  redactIn,
  redactUrl,
  renderEvent,
  startWorker,
  useColor,
  writeLines,
  type ClaudeboxWorker,
  type CliIo,
  type ExecuteResult,
} from '../../src/index.js';
import { startStandIn } from '../stand-in/index.js';
import { makeRepository } from './git-repository.js';
import { startPrivateRedis } from './private-redis.js';
import { errorMessage } from '../../src/common/errors.js';

/** The scripted model runs one Bash command, then answers quoting what it printed. */
const DEMO_PROMPT = [
  'Find out which Node.js version this machine runs and note it in node-version.txt.',
  'stand-in: bash node --version | tee node-version.txt',
  'stand-in: say This machine runs Node.js {{result}}; I wrote that to node-version.txt.',
].join('\n');

/** The repository the demo's job works on, in a checkout of its own. */
const DEMO_REPOSITORY = { 'README.md': '# A demo project\n' };

/** One cleanup step per thing the demo started, run in reverse order whatever happens. */
type Cleanup = () => Promise<void> | void;

/** What the demo started, for the steps that follow. */
interface DemoSetUp {
  readonly claude: string;
  readonly redisNote: string;
  readonly standInUrl: string;
  readonly workDir: string;
  /** A git repository the job gets a checkout of (WORKSPACE_SOURCES allows it). */
  readonly project: string;
  readonly queueName: string;
  readonly worker: ClaudeboxWorker;
  readonly client: ReturnType<typeof createClient>;
}

/**
 * `npm run demo`: a run from enqueue to result with nothing but `npm ci` done. A private
 * redis-server (or REDIS_URL), a worker, the real claude CLI, and a scripted stand-in for the
 * Anthropic API in place of the model. Everything it starts, it stops.
 */
export async function runDemo(io: CliIo): Promise<number> {
  const cleanups: Cleanup[] = [];
  const say = (line = ''): void => io.stdout(`${line}\n`);
  // Ctrl-C ends the following; the cleanups below then stop the run and everything else.
  const interrupted = new AbortController();
  const stopInterrupts = io.onInterrupt(() => interrupted.abort());
  try {
    const claude = await bundledBinary();
    if (claude === null) {
      io.stderr('claudebox demo: the claude CLI is not installed; run `npm ci` first\n');
      return 1;
    }
    const demo = await setUp(io, claude, cleanups);
    introduce(say, demo);
    const jobId = await enqueue(say, demo);
    const color = useColor(io);
    for await (const event of demo.client.events(jobId, { signal: interrupted.signal })) {
      writeLines(io.stdout, renderEvent(event, { color }));
    }
    if (interrupted.signal.aborted) {
      io.stderr('claudebox demo: interrupted; stopping everything it started\n');
      return 130;
    }
    const result = await demo.client.result(jobId, { timeoutMs: 30_000 });
    await conclude(say, result, demo);
    return result.success ? 0 : 1;
  } catch (error) {
    const message = errorMessage(error);
    // A message about the user's own Redis may quote its URL.
    const shown = io.env.REDIS_URL ? redactIn(message, io.env.REDIS_URL) : message;
    io.stderr(`claudebox demo: ${shown}\n`);
    return 1;
  } finally {
    stopInterrupts();
    await cleanUp(cleanups);
  }
}

async function setUp(io: CliIo, claude: string, cleanups: Cleanup[]): Promise<DemoSetUp> {
  const redis = await redisToUse(io, cleanups);
  const standIn = await startStandIn();
  cleanups.push(() => standIn.close());
  const scratch = mkdtempSync(join(tmpdir(), 'claudebox-demo-'));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const workDir = await realpath(scratch);
  const project = await makeRepository(
    join(workDir, 'project'),
    Object.entries(DEMO_REPOSITORY),
    'A demo project',
  );
  const queueName = `claudebox-demo-${randomUUID().slice(0, 8)}`;
  const env = demoEnv(io, {
    workDir,
    project,
    standInUrl: standIn.url,
    redisUrl: redis.url,
    queueName,
  });
  const config = loadConfig(env);
  const logs = new Writable({
    write(chunk: Buffer, _encoding, done) {
      io.stderr(chunk.toString());
      done();
    },
  });
  const worker = await startWorker({
    config,
    env,
    logger: createLogger(config.LOG_LEVEL, logs),
    claude: { path: claude, source: 'bundled' },
    workDir,
  });
  cleanups.push(() => worker.shutdown(0));
  const client = createClient({ url: redis.url, queueName, prefix: config.QUEUE_PREFIX });
  cleanups.push(() => client.close());
  if (io.env.REDIS_URL) {
    cleanups.push(() => removeQueue(redis.url, queueName, config.QUEUE_PREFIX));
  }
  const standInUrl = standIn.url;
  return { claude, redisNote: redis.note, standInUrl, workDir, project, queueName, worker, client };
}

/** REDIS_URL when set, else a private redis-server that the cleanups stop. */
async function redisToUse(
  io: CliIo,
  cleanups: Cleanup[],
): Promise<{ readonly url: string; readonly note: string }> {
  const url = io.env.REDIS_URL;
  if (url) return { url, note: `${redactUrl(url)} (from REDIS_URL)` };
  const redis = await startPrivateRedis().catch((error: unknown) => {
    throw new Error(`${errorMessage(error)}, or set REDIS_URL to a Redis to use`);
  });
  cleanups.push(() => redis.close());
  return {
    url: redis.url,
    note: `a private redis-server on ${redis.url} (set REDIS_URL to use yours)`,
  };
}

function demoEnv(
  io: CliIo,
  at: { workDir: string; project: string; standInUrl: string; redisUrl: string; queueName: string },
): Record<string, string | undefined> {
  const home = join(at.workDir, '.home');
  mkdirSync(join(home, '.claude'), { recursive: true });
  return {
    PATH: io.env.PATH,
    LANG: io.env.LANG,
    // A private HOME: the demo neither reads nor leaves anything in yours.
    HOME: home,
    CLAUDE_CONFIG_DIR: join(home, '.claude'),
    ANTHROPIC_BASE_URL: at.standInUrl,
    ANTHROPIC_API_KEY: 'scripted-stand-in',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    CLAUDE_CODE_MAX_RETRIES: '0',
    REDIS_URL: at.redisUrl,
    QUEUE_NAME: at.queueName,
    WORK_DIR: at.workDir,
    WORKSPACE_SOURCES: at.project,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'warn',
  };
}

/** On someone else's Redis: the demo's queue goes again, and claudebox's keys beside it. */
async function removeQueue(redisUrl: string, queueName: string, prefix: string): Promise<void> {
  const queue = new Queue(queueName, { connection: { url: redisUrl }, prefix });
  await queue.obliterate({ force: true });
  await queue.close();
  // The job's history and session share the queue's namespace, `<prefix>:<queue>:`.
  const redis = new Redis(redisUrl);
  for await (const keys of redis.scanStream({ match: `${queue.qualifiedName}:*` })) {
    if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
  }
  await redis.quit();
}

function introduce(say: (line?: string) => void, demo: DemoSetUp): void {
  say('claudebox demo');
  say(`  Redis    ${demo.redisNote}`);
  say(
    `  Model    a scripted stand-in for the Anthropic API on ${demo.standInUrl}: no API key, no network`,
  );
  say(`  Claude   the real claude CLI, ${demo.claude}`);
  say(`  Worker   one claudebox worker, WORK_DIR ${demo.workDir}`);
  say(`  Runs     ${describeIsolation(demo.worker.isolation)}`);
  say();
}

async function enqueue(say: (line?: string) => void, demo: DemoSetUp): Promise<string> {
  const jobId = await demo.client.enqueue({
    prompt: DEMO_PROMPT,
    workspace: { source: demo.project, ref: 'main' },
    allowedTools: ['Bash'],
    timeout: 120,
  });
  say(`Enqueued job ${jobId} on queue ${demo.queueName}, prompt:`);
  for (const line of DEMO_PROMPT.split('\n')) say(`  | ${line}`);
  say(`It works in a checkout of its own of ${demo.project} at main.`);
  say();
  say('Its events, as they arrive:');
  return jobId;
}

async function conclude(
  say: (line?: string) => void,
  result: ExecuteResult,
  demo: DemoSetUp,
): Promise<void> {
  say();
  say('The ExecuteResult (the job’s return value):');
  say(JSON.stringify(abbreviate(result), null, 2));
  say();
  const change = await demo.client.patch(result.jobId);
  say(
    `What the job changed, as \`claudebox patch ${result.jobId}\` prints it (pipe it to git apply):`,
  );
  for (const line of (change?.patch.toString('utf8') ?? '(no change stored)\n')
    .trimEnd()
    .split('\n')) {
    say(`  | ${line}`);
  }
  say('The checkout is gone; the repository itself is untouched.');
  say();
  say('The demo now stops everything it started. To run against the real API instead:');
  say('  export ANTHROPIC_API_KEY=sk-ant-...   # no stand-in');
  say('  npm start                             # a worker, on Redis at 127.0.0.1:6379');
  say('  npx claudebox run --follow "your prompt"');
}

function describeIsolation(isolation: ClaudeboxWorker['isolation']): string {
  if (isolation.mode === 'off') return `NOT isolated: ${isolation.reason ?? 'off'}`;
  const namespaces =
    isolation.namespaces.length > 0 ? ` and ${isolation.namespaces.join(', ')} namespaces` : '';
  return `isolated: a uid of their own${namespaces}`;
}

async function cleanUp(cleanups: Cleanup[]): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // Keep going: the next thing to stop matters as much.
    }
  }
}

/** The result as stored, but with the raw stdout (shown above, line by line) summarised. */
function abbreviate(result: ExecuteResult): Record<string, unknown> {
  return {
    ...result,
    output: `<${result.outputBytes} bytes: the CLI's stream-json lines, shown above>`,
    usage: result.usage === null ? null : '<token counts>',
  };
}
