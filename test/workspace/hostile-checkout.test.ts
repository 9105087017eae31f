import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitError, Workspaces } from '../../src/workspace/index.js';
import { git } from '../support/git.js';
import { oneCommitRepository } from '../support/git.js';

describe('a look at a checkout a run has had its way with', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-hostile-checkout-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const repository = (): string => oneCommitRepository(root);

  it('gives up on git stuck opening a FIFO the run left as a .gitignore, saying so', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    // No process will ever write to it: git's open() of it would wait for ever.
    execFileSync('mkfifo', [join(checkout.dir, '.gitignore')]);

    const looked = checkout.change({ maxPatchBytes: 1024 * 1024, timeoutMs: 1500 });
    await expect(looked).rejects.toThrow(GitError);
    await expect(looked).rejects.toThrow(/^git add did not finish within 1.5 s: stopped$/);
    // The next look is not held up behind it.
    rmSync(join(checkout.dir, '.gitignore'));
    writeFileSync(join(checkout.dir, 'new.txt'), 'x\n');
    await expect(checkout.change({ maxPatchBytes: 1024 * 1024 })).resolves.toMatchObject({
      added: ['new.txt'],
    });
    await checkout.release(false);
  });

  it('keeps the rest of the change where the run made a repository without a commit inside it', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    // What a model starting a new project does: `git init` in a folder of its own.
    execFileSync('git', ['init', '-q', join(checkout.dir, 'proj')]);
    writeFileSync(join(checkout.dir, 'proj', 'main.c'), 'int main(void) { return 0; }\n');
    writeFileSync(join(checkout.dir, 'notes.txt'), 'the rest of the work\n');

    const change = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(change.added).toEqual(['notes.txt']);
    expect(change.patch?.toString()).toContain('the rest of the work');
  });

  it("reads the run's files only through the hold it is given, and gives up where it cannot", async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    writeFileSync(join(checkout.dir, 'new.txt'), 'x\n');
    const held: string[] = [];
    const change = await checkout.change({
      maxPatchBytes: 1024 * 1024,
      hold: async (step) => {
        held.push('stopped');
        const done = await step();
        held.push('going on');
        return done;
      },
    });
    expect(change.added).toEqual(['new.txt']);
    expect(held).toEqual(['stopped', 'going on']);
    await expect(
      checkout.change({ maxPatchBytes: 1024 * 1024, hold: () => Promise.resolve(null) }),
    ).rejects.toThrow("the run's processes could not all be stopped for a look at its checkout");
    await checkout.release(false);
  });
  it('sees a file changed within the second the checkout was made, its size the same', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    // As an earlier attempt's patch applied right after the checkout leaves it: the same size,
    // and the mtime the index recorded, which git can tell apart only by the index's own mtime.
    const file = join(checkout.dir, 'README.md');
    const { mtime } = statSync(file);
    writeFileSync(file, 'REPO\n');
    utimesSync(file, mtime, mtime);
    utimesSync(join(checkout.dir, '.git', 'index'), mtime, mtime);
    // The index is taken over a second later.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await checkout.adoptIndex();

    const change = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(change.changed).toEqual(['README.md']);
    expect(change.patch?.toString()).toContain('+REPO');
    await checkout.release(false);
  });

  it('lists a change of more paths than a patch holds, however long they are, keeping some and counting the rest', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    // 30,000 files at the end of a path of 3,500 bytes: a listing of over 100 MB.
    const deep = join(
      checkout.dir,
      ...Array.from({ length: 14 }, (_, at) => String.fromCharCode(97 + at).repeat(250)),
    );
    mkdirSync(deep, { recursive: true });
    execFileSync('sh', ['-c', 'seq 30000 | xargs touch'], { cwd: deep });

    const change = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(change.added.length).toBeGreaterThan(0);
    expect(change.added.join('').length).toBeLessThanOrEqual(1024 * 1024);
    expect(change.added.length + change.unlisted).toBe(30_000);
    expect(change.patch).toBeNull();
    await checkout.release(false);
  });

  it('puts in the patch what git added, never a file a link the run made since leads to', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    // A file the run cannot read, but whose size and mtime it can see.
    const secrets = join(root, 'secrets');
    mkdirSync(secrets);
    writeFileSync(join(secrets, 'key'), 'TOP-SECRET hunter2\n', { mode: 0o600 });
    const lastYear = new Date(Date.now() - 365 * 24 * 3600 * 1000);
    utimesSync(join(secrets, 'key'), lastYear, lastYear);
    const { size, mtime } = statSync(join(secrets, 'key'));
    // A decoy of that size and mtime, where a link to the secrets will be.
    mkdirSync(join(checkout.dir, 'e'));
    writeFileSync(join(checkout.dir, 'e', 'key'), 'x'.repeat(size));
    utimesSync(join(checkout.dir, 'e', 'key'), mtime, mtime);

    const change = await checkout.change({
      maxPatchBytes: 1024 * 1024,
      hold: async (step) => {
        const done = await step();
        // The run, going on, swaps the directory for a link to the secrets.
        renameSync(join(checkout.dir, 'e'), join(checkout.dir, 'e.real'));
        symlinkSync(secrets, join(checkout.dir, 'e'));
        return done;
      },
    });
    expect(change.added).toEqual(['e/key']);
    expect(change.patch?.toString()).toContain(`+${'x'.repeat(size)}`);
    expect(change.patch?.toString()).not.toContain('hunter2');
    await checkout.release(false);
  });

  /**
   * Makes the repository at `dir` (with a commit) one whose clean filter for `file` touches
   * `marker`, and the file newer than its index says: git checks a repository nested in the
   * checkout for changes with a `git status` of its own run in it, which would hash that file,
   * through the run's filter.
   */
  function plantFilter(dir: string, file: string, marker: string): void {
    git(dir, 'config', 'filter.pwn.clean', `touch ${marker}; cat`);
    writeFileSync(join(dir, '.git', 'info', 'attributes'), `${file} filter=pwn\n`);
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, file), later, later);
  }

  it('runs nothing a repository the run nested in its checkout asks for (a clean filter), look after look', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    const marker = join(root, 'ran-as-root');
    const sub = join(checkout.dir, 'sub');
    execFileSync('git', ['init', '-q', sub]);
    writeFileSync(join(sub, 'f'), 'one\n');
    git(sub, 'add', 'f');
    git(sub, '-c', 'user.name=r', '-c', 'user.email=r@r', 'commit', '-q', '-m', 'nested');
    writeFileSync(join(checkout.dir, 'notes.txt'), 'one\n');
    const first = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(first.added).toEqual(['notes.txt', 'sub']);

    plantFilter(sub, 'f', marker);
    writeFileSync(join(checkout.dir, 'notes.txt'), 'two\n');
    const second = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(second.added).toEqual(['notes.txt', 'sub']);
    expect(second.patch?.toString()).toContain('+two');
    expect(existsSync(marker)).toBe(false);
    await checkout.release(false);
  });

  it("runs nothing a repository the run made in the source's submodule asks for, from the first look", async () => {
    const source = repository();
    const head = git(source, 'rev-parse', 'HEAD');
    git(source, 'update-index', '--add', '--cacheinfo', `160000,${head},mod`);
    git(source, '-c', 'user.name=r', '-c', 'user.email=r@r', 'commit', '-q', '-m', 'submodule');
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout('job-1', { source, ref: 'main' }, null);
    const marker = join(root, 'ran-as-root');
    // The submodule's own commit, as `git submodule update` would make it.
    const mod = join(checkout.dir, 'mod');
    rmSync(mod, { recursive: true, force: true });
    execFileSync('git', ['clone', '-q', source, mod]);
    git(mod, 'checkout', '-q', head);
    plantFilter(mod, 'README.md', marker);
    writeFileSync(join(checkout.dir, 'notes.txt'), 'one\n');

    const change = await checkout.change({ maxPatchBytes: 1024 * 1024 });
    expect(change).toMatchObject({ added: ['notes.txt'], changed: [] });
    expect(existsSync(marker)).toBe(false);
    await checkout.release(false);
  });
});
