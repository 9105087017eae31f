import type { JobsOptions } from 'bullmq';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent, ExecuteRequest, ExecuteResult } from '../../src/contract/index.js';
import { startStandIn, type StandIn } from '../../tools/stand-in/index.js';
import { findRealClaude, privateClaudeEnv, type PrivateClaudeEnv } from './real-claude.js';
import { collectEvents, startTestWorker, uniqueQueueName, type TestWorker } from './worker.js';

/** An in-process worker running the real claude CLI against a stand-in, on a queue of its own. */
export interface RealCliWorker {
  readonly standIn: StandIn;
  readonly claude: PrivateClaudeEnv;
  readonly worker: TestWorker;
  readonly client: ClaudeboxClient;
  readonly queueName: string;
  /** Enqueues a job and waits for its result and every event of it. */
  run(
    request: ExecuteRequest,
    jobOptions?: JobsOptions,
  ): Promise<{ jobId: string; result: ExecuteResult; events: ExecuteEvent[] }>;
  /** Stops it all; returns the pids of run processes that had to be killed (expect none). */
  close(): Promise<number[]>;
}

export async function startRealCliWorker(
  redisUrl: string,
  options: {
    /** More variables for the CLI's environment (CLAUDE_CODE_MAX_RETRIES, say). */
    readonly claudeEnv?: Readonly<Record<string, string>>;
    /** More worker settings. */
    readonly workerEnv?: Readonly<Record<string, string>>;
  } = {},
): Promise<RealCliWorker> {
  const standIn = await startStandIn();
  const claude = privateClaudeEnv({ baseUrl: standIn.url, extra: { ...options.claudeEnv } });
  const queueName = uniqueQueueName();
  const worker = await startTestWorker({
    redisUrl,
    queueName,
    claudeBin: findRealClaude(),
    env: { ...claude.env, CONCURRENCY: '2', KILL_GRACE_SECONDS: '2', ...options.workerEnv },
  });
  const client = createClient({ url: redisUrl, queueName });
  return {
    standIn,
    claude,
    worker,
    client,
    queueName,
    run: async (request, jobOptions) => {
      const jobId = await client.enqueue(request, jobOptions);
      const result = await client.result(jobId, { timeoutMs: 60_000 });
      const events = await collectEvents(client.events(jobId));
      return { jobId, result, events };
    },
    close: async () => {
      await worker.worker.shutdown(0);
      await client.close();
      await standIn.close();
      return claude.dispose();
    },
  };
}
