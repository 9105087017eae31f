import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GitError, Workspaces } from '../../src/workspace/index.js';

describe('a workspace source that never answers', () => {
  let root: string;
  let server: Server;
  const sockets: Socket[] = [];

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-stalled-source-'));
    // Takes every connection and reads the request, and never says a word.
    server = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    sockets.splice(0).forEach((socket) => socket.destroy());
    await new Promise((resolve) => server.close(resolve));
    rmSync(root, { recursive: true, force: true });
  });

  it('is given up once the clone stalls, as a source that could not be reached', async () => {
    const { port } = server.address() as { port: number };
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces'), stallSeconds: 1 });
    const checkout = workspaces.checkout(
      'job-1',
      { source: `http://127.0.0.1:${port}/repo.git`, ref: 'main' },
      null,
    );
    await expect(checkout).rejects.toThrow(GitError);
    await expect(checkout).rejects.toThrow(/^git clone failed: .*Operation too slow/);
    await expect(checkout).rejects.toMatchObject({ unreachable: true });
    expect(sockets.length).toBeGreaterThan(0);
    // Nothing half-made is left: no clone in the cache, no checkout.
    const cached = readdirSync(join(root, 'workspaces', 'cache'));
    expect(cached.filter((name) => !name.endsWith('.lock'))).toEqual([]);
    expect(readdirSync(join(root, 'workspaces', 'checkouts'))).toEqual([]);
  });

  it('is given up at once when its job stops, with nothing of git left', async () => {
    const { port } = server.address() as { port: number };
    const workspaces = await Workspaces.open({ dir: join(root, 'workspaces'), stallSeconds: 60 });
    const stop = new AbortController();
    const checkout = workspaces.checkout(
      'job-1',
      { source: `http://127.0.0.1:${port}/repo.git`, ref: 'main' },
      null,
      stop.signal,
    );
    while (sockets.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    await expect(checkout).rejects.toThrow('git clone was stopped: its job is stopping');
    await expect(checkout).rejects.toMatchObject({ unreachable: false });
    const gits = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`127.0.0.1:${port}`);
        } catch {
          return false;
        }
      });
    expect(gits).toEqual([]);
  });
});
