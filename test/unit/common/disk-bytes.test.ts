import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { diskBytes } from '../../../src/common/disk-bytes.js';

const MiB = 1024 * 1024;
const made: string[] = [];
const temporary = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-disk-bytes-'));
  made.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A directory holding one file of `bytes` written out (so that it takes blocks on disk). */
function holding(bytes: number): string {
  const dir = temporary();
  writeFileSync(join(dir, 'big'), Buffer.alloc(bytes, 1));
  return dir;
}

describe('the disk a tree takes', () => {
  it('counts a file once however many links it has, and a symlink as itself, never what it points to', async () => {
    const outside = holding(4 * MiB);
    const top = holding(MiB);
    linkSync(join(top, 'big'), join(top, 'again'));
    symlinkSync(outside, join(top, 'elsewhere'));
    const bytes = await diskBytes(top, new Set());
    expect(bytes).toBeGreaterThanOrEqual(MiB);
    expect(bytes).toBeLessThan(2 * MiB);
  });

  it('never measures what a directory swapped for a symlink meanwhile points to', async () => {
    const outside = holding(8 * MiB);
    const top = temporary();
    // The walk lets other work run within the first of these, the others listed.
    for (const sub of ['a', 'b', 'c']) {
      mkdirSync(join(top, sub));
      for (let i = 0; i < 300; i++) writeFileSync(join(top, sub, `f${i}`), '');
    }
    const measuring = diskBytes(top, new Set());
    for (const sub of ['a', 'b', 'c']) {
      renameSync(join(top, sub), join(top, `${sub}.old`));
      symlinkSync(outside, join(top, sub));
    }
    expect(await measuring).toBeLessThan(8 * MiB);
  });

  it('is 0 for what is not there', async () => {
    expect(await diskBytes(join(temporary(), 'never-made'), new Set())).toBe(0);
  });
});
