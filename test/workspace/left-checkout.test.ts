import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Workspaces } from '../../src/workspace/index.js';
import { git } from '../support/git.js';

describe('a checkout its attempt left behind', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-left-checkout-'));
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  function repository(): string {
    const path = join(root, 'repo');
    mkdirSync(path);
    git(path, 'init', '--quiet', '--initial-branch=main');
    writeFileSync(join(path, 'README.md'), 'repo\n');
    git(path, 'add', '-A');
    git(path, 'commit', '--quiet', '-m', 'first');
    return path;
  }

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
});
