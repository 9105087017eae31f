import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTree } from '../../../src/common/remove-tree.js';

const made: string[] = [];
const temporary = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-remove-tree-'));
  made.push(dir);
  return dir;
};
afterEach(() => {
  // rm walks a tree deeper than a path can name, which fs.rmSync cannot.
  for (const dir of made.splice(0)) execFileSync('rm', ['-rf', '--', dir]);
});

describe('removing a run’s directory tree', () => {
  it('removes every file and directory in it, and links themselves, never what they point to', async () => {
    const outside = temporary();
    writeFileSync(join(outside, 'kept.txt'), 'not the run’s');
    const top = join(temporary(), 'home');
    mkdirSync(join(top, '.claude', 'projects', 'p'), { recursive: true });
    writeFileSync(join(top, '.claude', 'projects', 'p', 'session.jsonl'), '{}\n');
    writeFileSync(join(top, '.bashrc'), 'echo hi');
    symlinkSync(outside, join(top, 'link-to-dir'));
    symlinkSync(join(outside, 'kept.txt'), join(top, '.claude', 'link-to-file'));
    symlinkSync('/nonexistent', join(top, 'dangling'));

    await removeTree(top);

    expect(existsSync(top)).toBe(false);
    expect(readFileSync(join(outside, 'kept.txt'), 'utf8')).toBe('not the run’s');
  });

  it('never removes through a directory that another run swapped for a symlink meanwhile', async () => {
    const outside = temporary();
    for (const name of ['a', 'b', 'c']) writeFileSync(join(outside, name), 'not the run’s');
    const top = join(temporary(), 'home');
    mkdirSync(join(top, 'sub'), { recursive: true });
    writeFileSync(join(top, 'sub', 'own'), '');
    // Enough entries that the removal lets other work run before it walks into sub.
    for (let i = 0; i < 600; i++) writeFileSync(join(top, `f${i}`), '');
    const removing = removeTree(top);
    // What another run's uid can do where the run left its home open to others.
    renameSync(join(top, 'sub'), join(top, 'sub.old'));
    symlinkSync(outside, join(top, 'sub'));
    await removing;
    expect(readdirSync(outside).sort()).toEqual(['a', 'b', 'c']);
  });

  it('removes a tree deeper than a path can name', async () => {
    const top = join(temporary(), 'deep');
    mkdirSync(top);
    // 300 levels of 20 characters: more than PATH_MAX (4,096) from the top.
    // Made one level at a time, each relative to the last: no path names the bottom.
    const levels = `process.chdir(process.argv[1]);
      for (let i = 0; i < 300; i++) { fs.mkdirSync('d234567890123456789'); process.chdir('d234567890123456789'); }
      fs.writeFileSync('leaf', '');`;
    execFileSync(process.execPath, ['-e', levels, top]);
    await removeTree(top);
    expect(existsSync(top)).toBe(false);
  });

  it('does nothing where the tree is gone', async () => {
    await expect(removeTree(join(temporary(), 'never-made'))).resolves.toBeUndefined();
  });

  it('lets the worker’s other work run while it removes a large tree', async () => {
    const top = join(temporary(), 'big');
    mkdirSync(top);
    for (let i = 0; i < 2000; i++) writeFileSync(join(top, `f${i}`), '');
    let leftMidway = 0;
    const removing = removeTree(top);
    // Runs after the removal's first slice; a removal in one go would have left nothing.
    setImmediate(() => (leftMidway = existsSync(top) ? readdirSync(top).length : 0));
    await removing;
    expect(leftMidway).toBeGreaterThan(0);
    expect(existsSync(top)).toBe(false);
  });
});
