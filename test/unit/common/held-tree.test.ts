import { closeSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { holdDir, MAX_HELD_DEPTH, walkHeld } from '../../../src/common/held-tree.js';

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A tree `levels` directories deep, each named `d`. */
function deepTree(levels: number): string {
  const top = mkdtempSync(join(tmpdir(), 'claudebox-held-'));
  made.push(top);
  mkdirSync(join(top, ...Array<string>(levels).fill('d')), { recursive: true });
  return top;
}

describe('a walk that holds each directory open', () => {
  it('walks a tree as deep as MAX_HELD_DEPTH, and refuses a deeper one rather than hold more', async () => {
    const walk = async (top: string): Promise<number> => {
      const held = holdDir(top) ?? -1;
      let entries = 0;
      try {
        await walkHeld(held, { entry: () => ++entries > 0 });
      } finally {
        closeSync(held);
      }
      return entries;
    };
    expect(await walk(deepTree(MAX_HELD_DEPTH))).toBe(MAX_HELD_DEPTH);
    await expect(walk(deepTree(MAX_HELD_DEPTH + 1))).rejects.toThrow(
      `the tree nests deeper than ${MAX_HELD_DEPTH} directories`,
    );
  });
});
