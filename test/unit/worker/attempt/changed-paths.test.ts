import { describe, expect, it } from 'vitest';
import { listedPaths, summaryLines } from '../../../../src/worker/attempt/changed-paths.js';
import type { Change } from '../../../../src/workspace/index.js';

const change = (paths: {
  changed?: string[];
  added?: string[];
  deleted?: string[];
  unlisted?: number;
}): Change => ({
  base: 'abc',
  changed: paths.changed ?? [],
  added: paths.added ?? [],
  deleted: paths.deleted ?? [],
  unlisted: paths.unlisted ?? 0,
  patch: Buffer.alloc(0),
  patchBytes: 0,
  commit: null,
});

describe('the paths a result lists', () => {
  it('lists every path of a change that fits, and omits none', () => {
    const listed = listedPaths(change({ changed: ['a'], added: ['b', 'c'], deleted: ['d'] }));
    expect(listed).toEqual({ changed: ['a'], added: ['b', 'c'], deleted: ['d'], pathsOmitted: 0 });
  });

  it('stops at its cap, counting the paths it left out, each list a prefix of its own', () => {
    const added = Array.from({ length: 100_000 }, (_, index) => `src/file-${index}.ts`);
    const listed = listedPaths(change({ changed: ['README.md'], added, deleted: ['old.txt'] }));
    const bytes = [...listed.changed, ...listed.added, ...listed.deleted].join('').length;
    expect(bytes).toBeLessThanOrEqual(32 * 1024);
    expect(listed.changed).toEqual(['README.md']);
    expect(listed.added).toEqual(added.slice(0, listed.added.length));
    expect(listed.deleted).toEqual([]);
    expect(listed.pathsOmitted).toBe(100_002 - 1 - listed.added.length);
  });
});

describe("the summary kept of a change over the patch's cap", () => {
  it('lists every path where they fit', () => {
    const lines = summaryLines(change({ changed: ['a'], added: ['b'], deleted: ['c'] }), 1024);
    expect(lines).toEqual(['A\tb', 'M\ta', 'D\tc']);
  });

  it('holds no more than the cap, and says how many paths it left out', () => {
    const added = Array.from({ length: 10_000 }, (_, index) => `file-${index}`);
    const lines = summaryLines(change({ added }), 4096);
    expect(lines.join('\n').length).toBeLessThanOrEqual(4096 + 64);
    expect(lines.at(-1)).toBe(`# ... and ${10_000 - (lines.length - 1)} more paths`);
  });

  it('quotes a path that holds a control character, a quote or a backslash, so no line of the summary is forged or reaches a terminal raw', () => {
    const lines = summaryLines(
      change({
        added: [
          'evil\u001b]0;PWNED\u0007',
          'README\nD\tforged',
          'csi\u009b31m',
          'a"b\\c',
          'plain é',
        ],
      }),
      4096,
    );
    expect(lines).toEqual([
      'A\t"evil\\u001b]0;PWNED\\u0007"',
      'A\t"README\\u000aD\\u0009forged"',
      'A\t"csi\\u009b31m"',
      'A\t"a\\"b\\\\c"',
      'A\tplain é',
    ]);
  });

  it('counts the paths the change itself left unlisted among those omitted and in the summary', () => {
    const touched = change({ added: ['a', 'b'], unlisted: 40_000 });
    expect(listedPaths(touched)).toMatchObject({ added: ['a', 'b'], pathsOmitted: 40_000 });
    expect(summaryLines(touched, 4096)).toEqual(['A\ta', 'A\tb', '# ... and 40000 more paths']);
  });
});
