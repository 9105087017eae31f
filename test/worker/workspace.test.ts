import { createHash, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { ExecuteResult } from '../../src/contract/index.js';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import {
  createQueue,
  fixture,
  collectEvents,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

import { findFreePort } from '../support/redis-server.js';
import { git } from '../support/git.js';
import { plantSetAside } from '../support/set-aside.js';
import { spawnCli } from '../cli/support.js';

const redisUrl = inject('redisUrl');
const UNREACHABLE_SOURCE = 'http://127.0.0.1:1/';

/** A repository with a text file, a file to delete and a binary file, on branch main. */
function makeRepository(root: string): { path: string; head: string } {
  const path = join(root, 'repos', 'app');
  mkdirSync(path, { recursive: true });
  git(path, 'init', '--quiet', '--initial-branch=main');
  writeFileSync(join(path, 'README.md'), 'hello\n');
  writeFileSync(join(path, 'old.txt'), 'to be deleted\n');
  writeFileSync(join(path, 'logo.bin'), Buffer.from([0, 1, 2, 255, 0, 7]));
  git(path, 'add', '-A');
  git(path, 'commit', '--quiet', '-m', 'first');
  return { path, head: git(path, 'rev-parse', 'HEAD') };
}

const answerOf = (result: ExecuteResult): { cwd: string; files: Record<string, string> } =>
  JSON.parse(result.finalOutput ?? '{}');

describe('a job with a workspace', () => {
  let root: string;
  let repo: { path: string; head: string };
  let queueName: string;
  let queue: Queue;
  let client: ClaudeboxClient;
  let worker: TestWorker;

  beforeEach(async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'claudebox-workspace-')));
    repo = makeRepository(root);
    queueName = uniqueQueueName();
    queue = createQueue(redisUrl, queueName);
    client = createClient({ url: redisUrl, queueName });
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-files.mjs'),
      env: {
        // Nothing listens on port 1: a source there cannot be reached.
        WORKSPACE_SOURCES: `${join(root, 'repos')},${UNREACHABLE_SOURCE}`,
        // Room for every test's patch but one's, which goes past it.
        WORKSPACE_PATCH_MAX_BYTES: String(64 * 1024),
        CONCURRENCY: '4',
        HEALTH_PORT: String(await findFreePort()),
        HEALTH_HOST: '127.0.0.1',
      },
    });
  });

  afterEach(async () => {
    await worker.worker.shutdown(0);
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(worker.workDir, { recursive: true, force: true });
  });

  const workspaceDir = (): string => join(worker.workDir, '.claudebox-workspaces');

  async function run(
    ask: object,
    workspace: object = {},
    attempts = 1,
    timeoutMs = 30_000,
  ): Promise<ExecuteResult> {
    const jobId = randomUUID();
    const request = {
      prompt: JSON.stringify(ask),
      workspace: { source: repo.path, ref: 'main', ...workspace },
    };
    await queue.add('execute', request, { jobId, attempts });
    await waitFor(
      `job ${jobId} to finish`,
      async () => {
        const state = await queue.getJobState(jobId);
        return state === 'completed' || state === 'failed' ? state : undefined;
      },
      timeoutMs,
    );
    const job = await queue.getJob(jobId);
    return (job?.returnvalue ?? (await client.result(jobId))) as ExecuteResult;
  }

  it('runs in a checkout of its own at the ref, and returns its change as a patch that applies to the base', async () => {
    const ask = {
      write: { 'README.md': 'hello, world\n', 'src/new.ts': 'export const x = 1;\n' },
      writeBase64: { 'data/blob.bin': Buffer.from([0, 0, 9, 250, 13, 10]).toString('base64') },
      delete: ['old.txt'],
    };
    const result = await run(ask);
    expect(result).toMatchObject({ success: true, failure: null });
    const answer = answerOf(result);
    expect(answer.cwd.startsWith(join(workspaceDir(), 'checkouts'))).toBe(true);
    expect(Object.keys(answer.files).sort()).toEqual([
      'README.md',
      'data/blob.bin',
      'logo.bin',
      'src/new.ts',
    ]);
    expect(result.workspace).toMatchObject({
      base: repo.head,
      changed: ['README.md'],
      added: ['data/blob.bin', 'src/new.ts'],
      deleted: ['old.txt'],
      patchTruncated: false,
      branch: null,
      commit: null,
    });

    const stored = await client.patch(result.jobId);
    expect(stored).toMatchObject({
      base: repo.head,
      truncated: false,
      bytes: result.workspace?.patchBytes,
    });
    // Applied to a fresh clone of the base, the patch gives the files the run left.
    const copy = join(root, 'copy');
    git(root, 'clone', '--quiet', repo.path, copy);
    const patchFile = join(root, 'change.patch');
    writeFileSync(patchFile, stored?.patch ?? '');
    git(copy, 'apply', '--check', patchFile);
    git(copy, 'apply', patchFile);
    expect(readFileSync(join(copy, 'README.md'), 'utf8')).toBe('hello, world\n');
    expect(readFileSync(join(copy, 'src/new.ts'), 'utf8')).toBe('export const x = 1;\n');
    expect([...readFileSync(join(copy, 'data/blob.bin'))]).toEqual([0, 0, 9, 250, 13, 10]);
    expect(readdirSync(copy)).not.toContain('old.txt');
    // The job is over: its checkout is gone, the source untouched.
    expect(readdirSync(join(workspaceDir(), 'checkouts'))).toEqual([]);
    expect(git(repo.path, 'status', '--porcelain')).toBe('');
  });

  it('prints the change raw with `claudebox patch`, so that `claudebox patch <id> | git apply` reproduces it', async () => {
    // Latin-1, not UTF-8: the patch carries these bytes as they are.
    const latin1 = Buffer.from('caf\xe9 cr\xe8me\n', 'latin1');
    const result = await run({ writeBase64: { 'menu.txt': latin1.toString('base64') } });
    expect(result.workspace?.added).toEqual(['menu.txt']);
    const copy = join(root, 'copy');
    git(root, 'clone', '--quiet', repo.path, copy);
    // The built command, as a user runs it (the test run builds dist/ first).
    const main = new URL('../../dist/cli/main.js', import.meta.url).pathname;
    execFileSync(
      'sh',
      ['-c', `"${process.execPath}" "${main}" patch "$1" | git apply`, 'sh', result.jobId],
      { cwd: copy, env: { ...process.env, REDIS_URL: redisUrl, QUEUE_NAME: queueName } },
    );
    expect(readFileSync(join(copy, 'menu.txt'))).toEqual(latin1);
    const missing = spawnCli(['patch', 'no-such-job'], {
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
    });
    expect(await missing.exited).toBe(3);
    expect(missing.stderr()).toContain('job no-such-job has no workspace change');
  });

  it('gives concurrent jobs on one repository each its own checkout: each sees only its own change', async () => {
    const [first, second] = await Promise.all([
      run({ write: { 'one.txt': 'first\n' }, holdMs: 1500 }),
      run({ write: { 'two.txt': 'second\n' }, holdMs: 1500 }),
    ]);
    expect(first.success && second.success).toBe(true);
    expect(Object.keys(answerOf(first).files)).toContain('one.txt');
    expect(Object.keys(answerOf(first).files)).not.toContain('two.txt');
    expect(Object.keys(answerOf(second).files)).toContain('two.txt');
    expect(Object.keys(answerOf(second).files)).not.toContain('one.txt');
    expect(answerOf(first).cwd).not.toBe(answerOf(second).cwd);
    expect(first.workspace?.added).toEqual(['one.txt']);
    expect(second.workspace?.added).toEqual(['two.txt']);
  });

  it('records the change of a run that failed too', async () => {
    const result = await run({ write: { 'partial.txt': 'half done\n' }, exitCode: 1 });
    expect(result).toMatchObject({ success: false, failure: 'cli-error' });
    expect(result.workspace?.added).toEqual(['partial.txt']);
    expect((await client.patch(result.jobId))?.patch.toString()).toContain('+half done');
  });

  it('stores the change after each tool the CLI reports done, while the run goes on', async () => {
    const jobId = randomUUID();
    const ask = { write: { 'draft.txt': 'first draft\n' }, toolResult: true, gate: '.git/hold' };
    const request = { prompt: JSON.stringify(ask), workspace: { source: repo.path, ref: 'main' } };
    await queue.add('execute', request, { jobId });
    const checkpoint = await waitFor('a checkpoint of the running job', async () => {
      const stored = await client.patch(jobId);
      return stored?.patch.toString().includes('+first draft') ? stored : undefined;
    });
    expect(checkpoint).toMatchObject({ base: repo.head, truncated: false });
    expect(await queue.getJobState(jobId)).toBe('active');
    const started = await waitFor('the started event', async () => {
      const history = await collectEvents(client.events(jobId, { follow: false }));
      return history.find((event) => event.type === 'started');
    });
    rmSync(join(started.data.cwd, '.git', 'hold'));
    const result = await client.result(jobId, { timeoutMs: 30_000 });
    expect(result.workspace?.added).toEqual(['draft.txt']);
    const metrics = await fetch(`${worker.worker.healthUrl ?? ''}/metrics`).then((response) =>
      response.text(),
    );
    expect(metrics).toMatch(/^claudebox_workspace_checkpoint_seconds_count 1$/m);
  });

  it("starts a retry from the earlier attempt's change: the files it wrote are there", async () => {
    const ask = { write: { 'step-one.txt': 'done\n' }, failUnlessPresent: 'step-one.txt' };
    const result = await run(ask, {}, 2);
    expect(result).toMatchObject({ success: true, attempt: 2 });
    expect(Object.keys(answerOf(result).files)).toContain('step-one.txt');
    expect(result.workspace).toMatchObject({ base: repo.head, added: ['step-one.txt'] });
  });

  it('lists at most 32 KiB of paths in its result however many files the run adds, and counts the rest', async () => {
    const paths = Array.from(
      { length: 1000 },
      (_, index) => `many/${String(index).padStart(4, '0')}-a-file-with-a-rather-long-name.txt`,
    );
    const result = await run({ write: Object.fromEntries(paths.map((path) => [path, 'x\n'])) });
    expect(result.success).toBe(true);
    const listed = result.workspace?.added ?? [];
    expect(listed.join('').length).toBeLessThanOrEqual(32 * 1024);
    expect(listed).toEqual(paths.slice(0, listed.length));
    expect(result.workspace?.pathsOmitted).toBe(paths.length - listed.length);
    expect(listed.length).toBeGreaterThan(0);
    // The patch still holds every file.
    const patch = (await client.patch(result.jobId))?.patch.toString() ?? '';
    expect(paths.filter((path) => !patch.includes(path))).toEqual([]);
  });

  it('keeps a summary of a change over WORKSPACE_PATCH_MAX_BYTES, and its retry starts from the base and says so', async () => {
    const big = 'y'.repeat(200 * 1024);
    const ask = { write: { 'big.txt': big, 'small.txt': 'x\n' }, exitCode: 1 };
    const jobId = randomUUID();
    const request = { prompt: JSON.stringify(ask), workspace: { source: repo.path, ref: 'main' } };
    await queue.add('execute', request, { jobId, attempts: 2 });
    const result = await client.result(jobId, { timeoutMs: 30_000 });
    expect(result).toMatchObject({ success: false, attempt: 2 });
    expect(result.workspace).toMatchObject({
      added: ['big.txt', 'small.txt'],
      patchTruncated: true,
    });
    expect(result.workspace?.patchBytes).toBeGreaterThan(big.length);
    const stored = await client.patch(jobId);
    expect(stored).toMatchObject({ truncated: true, bytes: result.workspace?.patchBytes });
    expect(stored?.patch.toString()).toContain(
      `over WORKSPACE_PATCH_MAX_BYTES=${64 * 1024}: only this summary is kept`,
    );
    expect(stored?.patch.toString()).toContain('A\tbig.txt');
    const events = await collectEvents(client.events(jobId));
    const notes = events.filter((event) => event.type === 'error' && event.attempt === 2);
    expect(notes.map((event) => (event.type === 'error' ? event.content : ''))).toContain(
      `the earlier attempt's change (${result.workspace?.patchBytes ?? 0} bytes) was over WORKSPACE_PATCH_MAX_BYTES and not kept: this attempt starts from ${repo.head}`,
    );
  });

  it('commits the change on a branch named after the job in the cached clone, when asked', async () => {
    const result = await run({ write: { 'feature.txt': 'new\n' } }, { commit: true });
    const branch = `claudebox/job-${result.jobId}`;
    expect(result.workspace).toMatchObject({ branch, added: ['feature.txt'] });
    const caches = readdirSync(join(workspaceDir(), 'cache')).filter((name) =>
      name.endsWith('.git'),
    );
    expect(caches).toHaveLength(1);
    const cache = join(workspaceDir(), 'cache', caches[0] ?? '');
    expect(git(cache, 'rev-parse', `refs/heads/${branch}`)).toBe(result.workspace?.commit);
    expect(git(cache, 'rev-parse', `${branch}^`)).toBe(repo.head);
    expect(git(cache, 'show', `${branch}:feature.txt`)).toBe('new');
  });

  it('checks out the ref asked for: a tag, a commit, a branch fetched after the first clone', async () => {
    git(repo.path, 'tag', 'v1');
    expect((await run({})).workspace?.base).toBe(repo.head);
    writeFileSync(join(repo.path, 'README.md'), 'second\n');
    git(repo.path, 'checkout', '--quiet', '-b', 'next');
    git(repo.path, 'commit', '--quiet', '-am', 'second');
    const next = git(repo.path, 'rev-parse', 'HEAD');
    expect((await run({}, { ref: 'next' })).workspace?.base).toBe(next);
    expect((await run({}, { ref: 'v1' })).workspace?.base).toBe(repo.head);
    expect((await run({}, { ref: repo.head })).workspace?.base).toBe(repo.head);
  });

  it('fails at once and is never retried, leaving nothing on disk, on a disallowed source, a missing ref or a source that is no repository', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'claudebox-outside-'));
    try {
      const disallowed = await run({}, { source: outside }, 3);
      expect(disallowed).toMatchObject({
        failure: 'invalid-request',
        retrying: false,
        attempt: 1,
      });
      expect(disallowed.error).toContain('workspace.source');
      expect(disallowed.error).toContain('is not inside a directory this worker allows');
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
    const missing = await run({}, { ref: 'no-such-branch' }, 3);
    expect(missing).toMatchObject({ failure: 'workspace-failed', retrying: false, attempt: 1 });
    expect(missing.error).toBe(
      `ref "no-such-branch" is not a branch, tag or commit of ${repo.path}`,
    );
    mkdirSync(join(root, 'repos', 'empty'));
    const notARepo = await run({}, { source: join(root, 'repos', 'empty') }, 3);
    expect(notARepo).toMatchObject({ failure: 'workspace-failed', retrying: false, attempt: 1 });
    expect(notARepo.error).toMatch(/^git clone failed: fatal: .*repository/);
    expect(notARepo.error).not.toContain('\n');
    expect(readdirSync(join(workspaceDir(), 'checkouts'))).toEqual([]);
    // Only the repository that exists is cached, no half-made clone of the other.
    expect(
      readdirSync(join(workspaceDir(), 'cache')).filter((name) => !name.endsWith('.lock')),
    ).toHaveLength(1);
  });

  it('retries a source git could not reach, as the network may be back for the next attempt', async () => {
    const failed = await run({}, { source: `${UNREACHABLE_SOURCE}repo.git` }, 2);
    expect(failed).toMatchObject({ failure: 'workspace-failed', retrying: false, attempt: 2 });
    expect(failed.error).toMatch(/^git clone failed: .*(Failed to connect|Couldn't connect)/);
    expect(readdirSync(join(workspaceDir(), 'checkouts'))).toEqual([]);
  });

  it('leaves a checkout that a set-aside run of the job could still be in as it is: the attempt fails, naming the uid', async () => {
    const jobId = randomUUID();
    const checkout = join(
      workspaceDir(),
      'checkouts',
      createHash('sha256').update(`bull:${queueName}:${jobId}`).digest('hex').slice(0, 32),
    );
    mkdirSync(checkout, { recursive: true });
    writeFileSync(join(checkout, 'left.txt'), 'what the earlier attempt was doing');
    // An earlier attempt's uid, set aside under a lease that still holds, reaching the checkout.
    const uid = 49_999;
    const setAside = plantSetAside(uid, [checkout]);
    try {
      await queue.add(
        'execute',
        { prompt: '{}', workspace: { source: repo.path, ref: 'main' } },
        { jobId },
      );
      const result = await client.result(jobId, { timeoutMs: 30_000 });
      expect(result).toMatchObject({ success: false, failure: 'worker-error' });
      expect(result.error).toContain(
        `${checkout} is within reach of an earlier run whose uid ${uid}`,
      );
      expect(readFileSync(join(checkout, 'left.txt'), 'utf8')).toBe(
        'what the earlier attempt was doing',
      );
    } finally {
      setAside.remove();
    }
  });

  it('clones a repository once for 50 jobs and leaves no checkout behind', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, index) =>
        run({ write: { [`file-${index}.txt`]: `${index}\n` } }, {}, 1, 300_000),
      ),
    );
    expect(results.filter((result) => !result.success)).toEqual([]);
    results.forEach((result, index) =>
      expect(result.workspace?.added).toEqual([`file-${index}.txt`]),
    );
    expect(readdirSync(join(workspaceDir(), 'checkouts'))).toEqual([]);
    expect(readdirSync(join(workspaceDir(), 'cache'))).toHaveLength(1);
    const metrics = await fetch(`${worker.worker.healthUrl ?? ''}/metrics`).then((response) =>
      response.text(),
    );
    expect(metrics).toContain('claudebox_workspace_clones_total 1');
  }, 320_000);
});
