import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { git, gitCapped } from '../../src/workspace/git.js';

/** Pids of the processes whose command line holds `mark`. */
function processesMarked(mark: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mark);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('a git command past its time limit', () => {
  let root: string;
  let path: string | undefined;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-git-limit-'));
    // A `git` that starts a process of its own, which keeps git's stdout and stderr open, as a
    // command that a repository names (or a remote helper) would.
    copyFileSync('/bin/sleep', join(root, 'sleep'));
    writeFileSync(join(root, 'git'), `#!/bin/sh\n${join(root, 'sleep')} 300 &\nwait\n`);
    chmodSync(join(root, 'git'), 0o755);
    path = process.env.PATH;
    process.env.PATH = `${root}:${path ?? ''}`;
  });

  afterEach(() => {
    process.env.PATH = path;
    for (const pid of processesMarked(root)) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('fails, saying so, with every process it started stopped', async () => {
    await expect(git(['status'], { timeoutMs: 500 })).rejects.toThrow(
      /^git status did not finish within 0.5 s: stopped$/,
    );
    expect(processesMarked(root)).toEqual([]);
  });

  it('fails the same way where its output is streamed', async () => {
    await expect(gitCapped(['diff'], { timeoutMs: 500 }, 1024)).rejects.toThrow(
      /^git diff did not finish within 0.5 s: stopped$/,
    );
    expect(processesMarked(root)).toEqual([]);
  });
});
