import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveClaudeBinary } from '../../src/executor/claude-bin.js';

const ownBin = new URL('../../node_modules/.bin', import.meta.url).pathname;

function dirWithClaude(): string {
  const dir = mkdtempSync(join(tmpdir(), 'claudebox-path-'));
  copyFileSync(new URL('../fixtures/bin/claude-success.mjs', import.meta.url), join(dir, 'claude'));
  chmodSync(join(dir, 'claude'), 0o755);
  return dir;
}

describe('finding the claude CLI', () => {
  it('takes CLAUDE_BIN when it is set', async () => {
    const dir = dirWithClaude();
    expect(await resolveClaudeBinary(join(dir, 'claude'), '/usr/bin')).toEqual({
      path: join(dir, 'claude'),
      source: 'CLAUDE_BIN',
    });
  });

  it('takes a claude installed on PATH over the bundled one', async () => {
    const dir = dirWithClaude();
    expect(await resolveClaudeBinary(undefined, `${ownBin}:${dir}`)).toEqual({
      path: join(dir, 'claude'),
      source: 'PATH',
    });
  });

  it('falls back to the bundled native binary, skipping its npm wrapper on PATH', async () => {
    const found = await resolveClaudeBinary(undefined, `${ownBin}:/nonexistent`);
    expect(found.source).toBe('bundled');
    expect(found.path).toMatch(/node_modules\/@anthropic-ai\/claude-code-[a-z0-9-]+\/claude$/);
  });

  it('names a CLAUDE_BIN that is not there', async () => {
    await expect(resolveClaudeBinary('/nowhere/claude', '/usr/bin')).rejects.toThrow(
      'CLAUDE_BIN="/nowhere/claude": no executable file there',
    );
    await expect(resolveClaudeBinary('no-such-claude', '/usr/bin')).rejects.toThrow(
      'CLAUDE_BIN="no-such-claude": no executable file there (not found on PATH)',
    );
  });
});
