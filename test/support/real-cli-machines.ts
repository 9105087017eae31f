import { findRealClaude, privateClaudeEnv, type PrivateClaudeEnv } from './real-claude.js';
import { spawnWorkerProcess, type WorkerProcess } from './worker-process.js';

/**
 * Worker processes running the real claude CLI against a stand-in, each a machine of its own:
 * a HOME and CLAUDE_CONFIG_DIR of its own, with Redis all they share.
 */
export class RealCliMachines {
  private readonly processes: WorkerProcess[] = [];
  private readonly homes: PrivateClaudeEnv[] = [];

  constructor(private readonly standInUrl: string) {}

  /** Starts a worker with `env` (REDIS_URL, QUEUE_NAME, ...) and waits until it is ready. */
  async start(env: Record<string, string>): Promise<WorkerProcess> {
    const home = privateClaudeEnv({ baseUrl: this.standInUrl });
    this.homes.push(home);
    const worker = spawnWorkerProcess({ ...home.env, CLAUDE_BIN: findRealClaude(), ...env });
    this.processes.push(worker);
    await worker.waitForLog('worker ready');
    return worker;
  }

  /** Stops every worker still running; returns the pids of run processes left to kill. */
  async stop(): Promise<number[]> {
    for (const worker of this.processes.splice(0)) {
      if (worker.child.exitCode === null && worker.child.signalCode === null)
        worker.child.kill('SIGTERM');
      await worker.exited;
    }
    const left: number[] = [];
    for (const home of this.homes.splice(0)) left.push(...(await home.dispose()));
    return left;
  }
}
