import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { startStandIn, type StandIn } from '../../tools/stand-in/index.js';
import { findRealClaude, privateClaudeEnv, type PrivateClaudeEnv } from './real-claude.js';
import { startTestWorker, uniqueQueueName, type TestWorker } from './worker.js';

/** A worker running the real CLI against a stand-in of its own, and a client of its queue. */
export interface RealCliStack {
  readonly standIn: StandIn;
  readonly claude: PrivateClaudeEnv;
  readonly worker: TestWorker;
  readonly client: ClaudeboxClient;
  readonly queueName: string;
  /** Stops it all; resolves to the pids of runs that outlived it (a test expects none). */
  stop(): Promise<number[]>;
}

export async function startRealCliStack(options: {
  readonly redisUrl: string;
  /** More variables for the CLI's environment (CLAUDE_CODE_MAX_RETRIES, say). */
  readonly claudeEnv?: Readonly<Record<string, string>>;
  /** More worker settings. */
  readonly workerEnv?: Readonly<Record<string, string>>;
}): Promise<RealCliStack> {
  const standIn = await startStandIn();
  const claude = privateClaudeEnv({ baseUrl: standIn.url, extra: { ...options.claudeEnv } });
  const queueName = uniqueQueueName();
  const worker = await startTestWorker({
    redisUrl: options.redisUrl,
    queueName,
    claudeBin: findRealClaude(),
    env: { ...claude.env, CONCURRENCY: '2', ...options.workerEnv },
  });
  const client = createClient({ url: options.redisUrl, queueName });
  return {
    standIn,
    claude,
    worker,
    client,
    queueName,
    stop: async () => {
      await worker.worker.shutdown(0);
      await client.close();
      await standIn.close();
      return claude.dispose();
    },
  };
}
