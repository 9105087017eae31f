import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import type { StartedEvent } from '../../src/contract/index.js';
import { startStandIn } from '../../tools/stand-in/index.js';
import { git } from '../support/git.js';
import { findFreePort } from '../support/redis-server.js';
import { eventually, pidsWithEnv, runPids } from '../support/processes.js';
import { RealCliMachines } from '../support/real-cli-machines.js';
import { startRealCliWorker } from '../support/real-cli-worker.js';
import type { WorkerProcess } from '../support/worker-process.js';
import { collectEvents, createQueue, uniqueQueueName, waitFor } from '../support/worker.js';

const redisUrl = inject('redisUrl');

/** Whether a transcript line is the model's turn that calls the Bash tool. */
function callsBash(line: string): boolean {
  try {
    const entry = JSON.parse(line) as { message?: { content?: unknown } };
    const content = entry.message?.content;
    return (
      Array.isArray(content) &&
      content.some((block: { type?: unknown; name?: unknown }) => {
        return block.type === 'tool_use' && block.name === 'Bash';
      })
    );
  } catch {
    return false;
  }
}

describe('a job with a workspace, through the real claude CLI', () => {
  let root: string;
  let repo: string;
  let base: string;
  const dirs: string[] = [];
  const newDir = async (name: string): Promise<string> => {
    const dir = await realpath(mkdtempSync(join(tmpdir(), `claudebox-${name}-`)));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    root = await newDir('e2e-repos');
    repo = join(root, 'app');
    mkdirSync(repo);
    git(repo, 'init', '--quiet', '--initial-branch=main');
    writeFileSync(join(repo, 'README.md'), 'first line\n');
    git(repo, 'add', '-A');
    git(repo, 'commit', '--quiet', '-m', 'first');
    base = git(repo, 'rev-parse', 'HEAD');
  });

  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** The files a patch gives when applied to a fresh clone of the base. */
  function applied(patch: Buffer, files: string[]): Record<string, string> {
    const copy = join(root, `copy-${randomUUID()}`);
    git(root, 'clone', '--quiet', repo, copy);
    const patchFile = `${copy}.patch`;
    writeFileSync(patchFile, patch);
    git(copy, 'apply', '--check', patchFile);
    git(copy, 'apply', patchFile);
    return Object.fromEntries(files.map((file) => [file, readFileSync(join(copy, file), 'utf8')]));
  }

  it('creates and edits files in its checkout; the patch applies to the base and gives those files', async () => {
    const setup = await startRealCliWorker(redisUrl, {
      workerEnv: {
        WORKSPACE_SOURCES: root,
        HEALTH_PORT: String(await findFreePort()),
        HEALTH_HOST: '127.0.0.1',
      },
    });
    try {
      const { jobId, result } = await setup.run({
        prompt: [
          'Add a changelog and fix the README.',
          'stand-in: write CHANGELOG.md 0.1: the first release',
          'stand-in: read README.md',
          'stand-in: edit README.md :: first line :: first line, edited',
          'stand-in: say Done.',
        ].join('\n'),
        allowedTools: ['Read', 'Write', 'Edit'],
        workspace: { source: repo, ref: 'main' },
      });
      expect(result).toMatchObject({
        success: true,
        finalOutput: 'Done.',
        workspace: { base, added: ['CHANGELOG.md'], changed: ['README.md'], deleted: [] },
      });
      const stored = await setup.client.patch(jobId);
      expect(stored).toMatchObject({ base, truncated: false });
      expect(applied(stored?.patch ?? Buffer.alloc(0), ['CHANGELOG.md', 'README.md'])).toEqual({
        'CHANGELOG.md': '0.1: the first release',
        'README.md': 'first line, edited\n',
      });
      // The source repository is not touched, and the job's checkout is gone.
      expect(git(repo, 'status', '--porcelain')).toBe('');
      const workspaceDir = join(setup.worker.workDir, '.claudebox-workspaces');
      expect(readdirSync(join(workspaceDir, 'checkouts'))).toEqual([]);
      // Checkpoints are taken while the run goes on. One asked for while another is under way is
      // folded into the next, and the attempt's end stops them, so three tools give at least one.
      const metrics = await fetch(`${setup.worker.worker.healthUrl ?? ''}/metrics`).then((r) =>
        r.text(),
      );
      const checkpoints = /^claudebox_workspace_checkpoint_seconds_count (\d+)$/m.exec(metrics);
      expect(Number(checkpoints?.[1])).toBeGreaterThanOrEqual(1);
    } finally {
      expect(await setup.close()).toEqual([]);
    }
  });

  describe('after its worker was SIGKILLed', () => {
    let machines: RealCliMachines | undefined;
    afterEach(async () => {
      expect(await machines?.stop()).toEqual([]);
    });

    it('resumes the session on another machine, in a checkout that has the files a tool wrote before the crash', async () => {
      const standIn = await startStandIn();
      const queueName = uniqueQueueName();
      const client = createClient({ url: redisUrl, queueName });
      const queue = createQueue(redisUrl, queueName);
      const redis = new Redis(redisUrl);
      // Two machines: a WORK_DIR, HOME and CLAUDE_CONFIG_DIR each; Redis is all they share.
      machines = new RealCliMachines(standIn.url);
      const machine = async (name: string): Promise<WorkerProcess> =>
        (machines as RealCliMachines).start({
          REDIS_URL: redisUrl,
          QUEUE_NAME: queueName,
          WORK_DIR: await newDir(`work-${name}`),
          WORKSPACE_SOURCES: root,
          LOCK_DURATION_SECONDS: '2',
        });
      try {
        const a = await machine('a');
        const jobId = randomUUID();
        const prompt = [
          'Write the notes, then wait for the slow step, then read them back.',
          'stand-in: write notes.md written before the crash',
          'stand-in: bash echo slow-step-started && sleep 600',
          'stand-in: bash cat notes.md',
          'stand-in: say The notes say: {{result}}',
        ].join('\n');
        const workspace = { source: repo, ref: 'main' };
        await client.enqueue(
          { prompt, allowedTools: ['Write', 'Bash'], workspace },
          { jobId, attempts: 2 },
        );
        await waitFor('the checkpoint after the Write tool', async () =>
          (await client.patch(jobId))?.patch.toString().includes('+written before the crash')
            ? true
            : undefined,
        );
        await waitFor('the slow step', () => (runPids(jobId).length >= 3 ? true : undefined));
        // The session as shipped to Redis holds the slow step's call (the first Bash call), so
        // the retry does not make it again.
        const sessionId = (await queue.getJob(jobId))?.progress;
        const transcript = `${queue.qualifiedName}:session:${(sessionId as { sessionId: string }).sessionId}:data`;
        await waitFor('the slow step in the shipped session', async () => {
          const shipped = await redis.getBuffer(transcript);
          // Whole lines only: the CLI resumes from the last line it can read whole.
          const lines = shipped ? gunzipSync(shipped).toString().split('\n').slice(0, -1) : [];
          return lines.some(callsBash) ? true : undefined;
        });

        a.child.kill('SIGKILL');
        await a.exited;
        expect(
          await eventually(() => pidsWithEnv('CLAUDEBOX_JOB_ID', jobId).length === 0, 5000),
        ).toBe(true);

        await machine('b');
        const result = await client.result(jobId, { timeoutMs: 90_000 });
        expect(result).toMatchObject({
          success: true,
          attempt: 2,
          resumed: true,
          workspace: { base, added: ['notes.md'], changed: [], deleted: [] },
        });
        expect(result.finalOutput).toContain('The notes say: written before the crash');
        const events = await collectEvents(client.events(jobId));
        const starts = events.filter((e): e is StartedEvent => e.type === 'started');
        expect(starts.map((e) => [e.attempt, e.data.resumed, e.data.prompt])).toEqual([
          [1, false, 'original'],
          [2, true, 'continue'],
        ]);
        expect(result.sessionId).toBe(starts[0]?.data.sessionId);
      } finally {
        await client.close();
        await redis.quit();
        await queue.obliterate({ force: true });
        await queue.close();
        await standIn.close();
      }
    }, 180_000);
  });
});
