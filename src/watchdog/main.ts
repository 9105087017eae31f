import { pino } from 'pino';
import { createLogger } from '../config/logger.js';
import { sweepRunProcesses, WORKER_MARKER } from '../executor/index.js';
import { clearUid, endLease, leasesOf } from '../isolation/index.js';

/**
 * The watchdog process: it lives as long as the worker that started it. When its stdin pipe
 * closes, the worker is gone (also after SIGKILL, which no handler in the worker can catch),
 * and every process still carrying that worker's marker is stopped, so nothing of its runs
 * goes on once another worker takes the jobs over. Isolated runs are known by the uids the
 * worker leased: every process of those uids is killed and the leases freed, but for a uid
 * another worker took over meanwhile (it stopped them itself).
 */
const [workerId, leaseDir, setpriv, shell, workDir, homes] = process.argv.slice(2);
if (!workerId) {
  process.stderr.write('usage: watchdog <worker id>\n');
  process.exit(2);
}

// Ctrl-C and SIGTERM meant for the worker's process group are the worker's business: it shuts
// down gracefully, then closes our stdin.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);

let swept = false;
const sweep = async (): Promise<void> => {
  if (swept) return;
  swept = true;
  const count = await sweepRunProcesses(
    { name: WORKER_MARKER, value: workerId },
    { graceMs: 1000 },
  );
  if (leaseDir !== undefined && setpriv !== undefined && shell !== undefined) {
    for (const { uid, held } of await leasesOf(leaseDir, workerId)) {
      // A worker may have taken the uid over already, and be running a job as it.
      const clear = (): Promise<void> =>
        clearUid(uid, { sender: { setpriv, shell }, leaseDir, lease: held.lease, workDir, homes });
      await endLease(leaseDir, uid, held, clear).catch(() => undefined);
    }
  }
  if (count > 0) {
    // Synchronous: the process exits right after.
    const log = createLogger('info', pino.destination({ fd: 2, sync: true }));
    log.warn({ workerId, count }, 'watchdog stopped processes of a worker that died');
  }
  process.exit(0);
};
process.stdin.on('end', () => void sweep());
process.stdin.on('error', () => void sweep());
process.stdin.resume();
