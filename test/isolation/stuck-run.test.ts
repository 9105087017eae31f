import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { StartedEvent } from '../../src/contract/index.js';
import { pidsOfUid } from '../support/processes.js';
import { DEFAULT_LEASE_DIR } from '../support/set-aside.js';
import { spawnWorkerProcess, type WorkerProcess } from '../support/worker-process.js';
import { collectEvents, fixture, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');
/** RUN_ROOT is left at its default. */
const leases = DEFAULT_LEASE_DIR;

/** Runs a command of the test's set-up (the global set-up checked it is there), saying why it failed. */
function system(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const said = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(
      `${command} ${args.join(' ')} failed (it needs root and a loop device): ${said}`,
    );
  }
}

/** Thaws the file system where it is frozen (fsfreeze fails where it is not). */
function thaw(mountPoint: string): void {
  try {
    execFileSync('fsfreeze', ['--unfreeze', mountPoint], { stdio: 'ignore' });
  } catch {
    // Not frozen.
  }
}

/** A process's state (R, S, D...) from /proc; undefined once it is gone. */
function stateOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[0];
  } catch {
    return undefined;
  }
}

describe.each([
  ['with namespaces', 'auto', '57300'],
  ['with its uid alone', 'off', '57400'],
])('a run with a process no kill can end yet, isolated %s', (_name, namespaces, uidBase) => {
  const queueName = uniqueQueueName();
  let root: string;
  let frozen: string;
  let worker: WorkerProcess;
  let client: ClaudeboxClient;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-stuck-'));
    const workDir = join(root, 'work');
    // Below a directory the run is handed, never one the worker itself changes at the run's end:
    // a frozen file system would stop the worker too (its take-back changes that directory).
    frozen = join(workDir, 'shared', 'frozen');
    mkdirSync(frozen, { recursive: true });
    chmodSync(root, 0o711);
    // A file system of its own, which the test freezes: a write to it then waits in the kernel
    // (state D), as on a hung network file system, and no SIGKILL ends that process meanwhile.
    const image = join(root, 'fs.img');
    system('truncate', ['-s', '16M', image]);
    system('mkfs.ext4', ['-q', '-F', image]);
    system('mount', ['-o', 'loop', image, frozen]);
    worker = spawnWorkerProcess({
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      CLAUDE_BIN: fixture('claude-hostile.mjs'),
      WORK_DIR: workDir,
      RUN_ISOLATION: 'required',
      RUN_NAMESPACES: namespaces,
      RUN_UID_BASE: uidBase,
      RUN_UID_COUNT: '2',
      KILL_GRACE_SECONDS: '0.5',
    });
    await worker.waitForLog('worker ready');
    client = createClient({ url: redisUrl, queueName });
  });

  afterAll(async () => {
    thaw(frozen);
    await client.close();
    worker.child.kill('SIGTERM');
    await worker.exited;
    await waitFor('the file system to be unmounted', () => {
      try {
        execFileSync('umount', [frozen], { stdio: 'ignore' });
        return true;
      } catch {
        return undefined;
      }
    });
    rmSync(root, { recursive: true, force: true });
  });

  it("keeps its uid out of the pool and its job's scratch directory, and clears both once the process can end", async () => {
    const jobId = randomUUID();
    const beats = join(frozen, 'beats');
    const ask = { stuck: beats, holdMs: 3000 };
    await client.enqueue(
      { prompt: JSON.stringify(ask), addDirs: ['shared'] },
      { jobId, attempts: 1 },
    );
    await waitFor('the run to write on the file system', () =>
      existsSync(beats) && readFileSync(beats, 'utf8').length > 0 ? true : undefined,
    );
    system('fsfreeze', ['--freeze', frozen]);
    try {
      const events = await collectEvents(client.events(jobId));
      const started = events.find((event): event is StartedEvent => event.type === 'started');
      const uid = started?.data.isolation?.uid ?? NaN;
      expect(uid).toBeGreaterThanOrEqual(Number(uidBase));
      // The job keeps the CLI's result; the run's stuck process is still there, in the kernel.
      expect(await client.result(jobId, { timeoutMs: 30_000 })).toMatchObject({ success: true });
      const kept = await worker.waitForLog(
        "kept the job's scratch directory until its uid is cleared",
      );
      const scratch = String(kept.dir);
      expect(existsSync(scratch)).toBe(true);
      expect(readFileSync(`${scratch}.job`, 'utf8')).toContain(jobId);
      const stuck = pidsOfUid(uid);
      expect(stuck.length).toBeGreaterThan(0);
      expect(stuck.map(stateOf)).toContain('D');
      expect(existsSync(join(leases, `${uid}.reach`))).toBe(true);
      expect(existsSync(join(leases, `${uid}.left`))).toBe(true);
      const homes = join(dirname(leases), 'homes');
      const homesOfUid = () => readdirSync(homes).filter((name) => name.startsWith(`${uid}-`));
      // Its home, and with namespaces the temporary directories beside it.
      expect(homesOfUid()).toHaveLength(namespaces === 'auto' ? 2 : 1);

      thaw(frozen);
      // The pool clears a set-aside uid again after 10 s, 20 s...
      await waitFor(
        'the uid to be cleared',
        () => (pidsOfUid(uid).length === 0 ? true : undefined),
        60_000,
      );
      await waitFor(
        'the scratch directory and its note to go',
        () => (existsSync(scratch) || existsSync(`${scratch}.job`) ? undefined : true),
        60_000,
      );
      await waitFor(
        "the uid's lease and notes to go",
        () => (existsSync(join(leases, String(uid))) ? undefined : true),
        60_000,
      );
      for (const note of ['reach', 'left', 'handed']) {
        expect(existsSync(join(leases, `${uid}.${note}`))).toBe(false);
      }
      expect(homesOfUid()).toEqual([]);
    } finally {
      thaw(frozen);
    }
  }, 120_000);
});
