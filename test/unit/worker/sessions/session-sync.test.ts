import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startSessionSync } from '../../../../src/worker/sessions/session-sync.js';
import type { SessionStore } from '../../../../src/worker/sessions/sessions.js';
import {
  findTranscript,
  transcriptPath,
} from '../../../../src/worker/sessions/transcript-files.js';

afterEach(() => {
  vi.useRealTimers();
});

describe("a run's session shipping", () => {
  it('ships one at a time: a tick that comes while a ship is under way is skipped, not queued', async () => {
    vi.useFakeTimers();
    let ships = 0;
    let release: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (release = resolve));
    // A shipper whose first ship takes long (a config dir the run filled with entries, say).
    const store = {
      maxBytes: 1024,
      shipper: () => ({
        stopped: null,
        ship: async () => {
          ships += 1;
          await slow;
        },
      }),
    } as unknown as SessionStore;
    const sync = startSessionSync(
      store,
      5,
      { ref: { scope: '', sessionId: 'a-session' }, from: 0 },
      { configDir: '/nonexistent', cwd: '/work' },
      pino({ level: 'silent' }),
      () => undefined,
    );
    await vi.advanceTimersByTimeAsync(200);
    release();
    await sync?.stop();
    // The one under way through forty ticks, and the last one.
    expect(ships).toBe(2);
  });
});

describe('the transcript of a session on this machine', () => {
  let configDir: string;
  afterEach(() => rmSync(configDir, { recursive: true, force: true }));

  it('is where the CLI keeps it for the cwd, or in another project directory of the config dir', async () => {
    configDir = mkdtempSync(join(tmpdir(), 'claudebox-transcripts-'));
    const place = { configDir, cwd: '/work/repo' };
    expect(await findTranscript(place, 'a-session')).toBeNull();

    const other = join(configDir, 'projects', '-elsewhere', 'a-session.jsonl');
    mkdirSync(join(configDir, 'projects', '-elsewhere'), { recursive: true });
    writeFileSync(other, '{}\n');
    expect(await findTranscript(place, 'a-session')).toBe(other);

    const expected = transcriptPath(place, 'a-session');
    mkdirSync(join(configDir, 'projects', '-work-repo'), { recursive: true });
    writeFileSync(expected, '{}\n');
    expect(await findTranscript(place, 'a-session')).toBe(expected);
  });
});
