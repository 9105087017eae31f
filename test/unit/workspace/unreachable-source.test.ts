import { describe, expect, it } from 'vitest';
import { unreachable } from '../../../src/workspace/git.js';

describe('telling a source that could not be reached from one that refused', () => {
  it.each([
    "fatal: unable to access 'https://git.example/r.git/': Could not resolve host: git.example",
    "fatal: unable to access 'http://127.0.0.1:1/r.git/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server",
    "fatal: unable to access 'http://h/r.git/': Operation too slow. Less than 1000 bytes/sec transferred the last 60 seconds",
    "fatal: unable to access 'https://h/r.git/': The requested URL returned error: 503",
    'error: RPC failed; HTTP 429 curl 22 The requested URL returned error: 429\nfatal: the remote end hung up unexpectedly',
    'ssh: connect to host h port 22: Connection refused\nfatal: Could not read from remote repository.',
    'fetch-pack: unexpected disconnect while reading sideband packet\nfatal: early EOF',
  ])('retries: %s', (printed) => {
    expect(unreachable(printed)).toBe(true);
  });

  it.each([
    'error: RPC failed; HTTP 403 curl 22 The requested URL returned error: 403\nfatal: the remote end hung up unexpectedly',
    "fatal: unable to access 'https://h/r.git/': The requested URL returned error: 404",
    "remote: Repository not found.\nfatal: repository 'https://h/r.git/' not found",
    "fatal: Authentication failed for 'https://h/r.git/'",
    "fatal: could not read Username for 'https://h': terminal prompts disabled",
    'git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.',
    "fatal: '/srv/empty' does not appear to be a git repository",
  ])('does not retry: %s', (printed) => {
    expect(unreachable(printed)).toBe(false);
  });
});
