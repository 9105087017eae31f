import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Workspaces } from '../../src/workspace/index.js';
import { oneCommitRepository } from '../support/git.js';

/** A tree deeper than PATH_MAX (4,096 bytes) in `dir`: what `mkdir d && cd d` in a loop leaves. */
function makeDeepTree(dir: string): void {
  execFileSync('perl', ['-e', 'for (1 .. 600) { mkdir "d" x 10 or die; chdir "d" x 10 or die }'], {
    cwd: dir,
  });
}

describe('a checkout its attempt left behind', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-left-checkout-'));
  });

  afterEach(() => {
    // rm walks by descriptors: a tree deeper than a path can name goes too.
    execFileSync('rm', ['-rf', root]);
  });

  const repository = (): string => oneCommitRepository(root);

  it('leaves no clone its worker died in the middle of to the next sweep, and keeps the finished ones', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    await checkout.release(false);
    const cache = join(root, 'workspaces', 'cache');
    const [clone] = readdirSync(cache).filter((name) => name.endsWith('.git'));
    // What a worker SIGKILLed while it cloned leaves: the clone under way, half made.
    execFileSync('cp', ['-a', join(cache, clone ?? ''), join(cache, 'dead.git.partial')]);

    await workspaces.sweep();
    expect(readdirSync(cache)).not.toContain('dead.git.partial');
    expect(readdirSync(cache)).toContain(clone);
  });

  it('goes with the first sweep after no run can be in it any more, and stays until then', async () => {
    const inUse = new Set<string>();
    const workspaces = await Workspaces.open({
      dir: join(root, 'workspaces'),
      runMayBeIn: (dir) => Promise.resolve(inUse.has(dir)),
    });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    writeFileSync(join(checkout.dir, 'wip.txt'), 'a process of the run may still be here\n');
    inUse.add(checkout.dir);

    await checkout.leave();
    await workspaces.sweep();
    await workspaces.sweep();
    expect(existsSync(join(checkout.dir, 'wip.txt'))).toBe(true);

    inUse.delete(checkout.dir);
    await workspaces.sweep();
    expect(readdirSync(join(root, 'workspaces', 'checkouts'))).toEqual([]);
  });

  it("is the next attempt's once it takes the checkout, even while a sweep was about to remove it", async () => {
    let looked: () => void = () => undefined;
    const looking = new Promise<void>((resolve) => (looked = resolve));
    let letGo: () => void = () => undefined;
    const held = new Promise<boolean>((resolve) => (letGo = () => resolve(false)));
    const workspaces = await Workspaces.open({
      dir: join(root, 'workspaces'),
      // The sweep is slow to decide (it looks for runs that could still be in the checkout).
      runMayBeIn: () => {
        looked();
        return held;
      },
    });
    const request = { source: repository(), ref: 'main' };
    const first = await workspaces.checkout('job-1', request, null);
    await first.leave();

    const sweep = workspaces.sweep();
    await looking;
    const next = workspaces.checkout('job-1', request, null);
    await new Promise((resolve) => setTimeout(resolve, 300));
    letGo();
    await sweep;
    const checkout = await next;
    expect(readFileSync(join(checkout.dir, 'README.md'), 'utf8')).toBe('repo\n');
    // The next sweep finds it held.
    await workspaces.sweep();
    expect(readFileSync(join(checkout.dir, 'README.md'), 'utf8')).toBe('repo\n');
  });

  it('leaves no lock file of a worker that died holding it, once the checkout is gone', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const checkout = await workspaces.checkout(
      'job-1',
      { source: repository(), ref: 'main' },
      null,
    );
    await checkout.leave();
    await workspaces.sweep();
    // The sweep's worker died between removing the checkout and its lock (no process has a pid
    // above pid_max).
    writeFileSync(`${checkout.dir}.lock`, '999999999 1');
    await workspaces.sweep();
    expect(readdirSync(join(root, 'workspaces', 'checkouts'))).toEqual([]);
  });

  it('goes however deep its run made it, and the sweep goes on to the others', async () => {
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces') });
    const request = { source: repository(), ref: 'main' };
    const deep = await workspaces.checkout('job-1', request, null);
    makeDeepTree(deep.dir);
    const other = await workspaces.checkout('job-2', request, null);
    await deep.leave();
    await other.leave();

    await workspaces.sweep();
    expect(readdirSync(join(root, 'workspaces', 'checkouts'))).toEqual([]);

    const released = await workspaces.checkout('job-3', request, null);
    makeDeepTree(released.dir);
    await released.release(false);
    expect(readdirSync(join(root, 'workspaces', 'checkouts'))).toEqual([]);
  });
});
