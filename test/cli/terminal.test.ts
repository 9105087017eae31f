import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import { afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { pidsWithCommandLine } from '../support/processes.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const root = new URL('../../', import.meta.url).pathname;
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

const quote = (value: string): string => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * The question on a real terminal: the CLI runs in a tmux pane, keys are typed into it, and
 * the screen is read back.
 */
describe('Ctrl-C at a terminal', () => {
  beforeAll(() => {
    if (!hasTmux) {
      throw new Error(
        'tmux is needed for the terminal tests: install it (apt-get install -y tmux)',
      );
    }
  });

  let socket: string;
  let dir: string;
  let queueName: string;
  let client: ClaudeboxClient;
  let queue: Queue;
  let worker: TestWorker;

  beforeEach(async () => {
    socket = `claudebox-test-${randomUUID().slice(0, 8)}`;
    dir = mkdtempSync(join(tmpdir(), 'claudebox-tty-'));
    queueName = uniqueQueueName();
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture('claude-slow.mjs') });
  });

  afterEach(async () => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    await worker.worker.shutdown(0);
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
    const left = await waitFor('tmux to go', () =>
      pidsWithCommandLine(socket).length === 0 ? [] : undefined,
    ).catch(() => pidsWithCommandLine(socket));
    expect(left, 'processes of the tmux session outlived the test').toEqual([]);
  });

  const tmux = (...args: string[]): string =>
    execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const screen = (): string => tmux('capture-pane', '-p', '-t', 'cli');

  /** Runs `claudebox <args>` in a pane; the exit code lands in a file, the pane stays. */
  const startInPane = (args: string, stdin?: string): void => {
    const claudebox = `node --import tsx ${quote(join(root, 'src/cli/main.ts'))} ${args}`;
    const pipe = stdin === undefined ? '' : `printf %s ${quote(stdin)} | `;
    const command =
      `cd ${quote(root)} && ${pipe}` +
      `env REDIS_URL=${quote(redisUrl)} QUEUE_NAME=${quote(queueName)} NO_COLOR=1 ${claudebox}; ` +
      `echo $? > ${quote(join(dir, 'exit'))}; exec sleep 600`;
    tmux('new-session', '-d', '-s', 'cli', '-x', '200', '-y', '50', command);
  };
  const waitForScreen = (pattern: RegExp): Promise<RegExpMatchArray> =>
    waitFor(`the screen to show ${pattern}`, () => pattern.exec(screen()) ?? undefined);
  const exitCode = (): Promise<string> =>
    waitFor('the command to exit', () => {
      try {
        return readFileSync(join(dir, 'exit'), 'utf8').trim() || undefined;
      } catch {
        return undefined;
      }
    });
  const finalState = (jobId: string) =>
    waitFor('the job to end', async () => {
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? state : undefined;
    });

  it('asks whether to cancel the job too; "y" cancels it and the command exits 130', async () => {
    startInPane(`run --follow ${quote('sleep 30')}`);
    const [, jobId = ''] = await waitForScreen(/▶ job (\S+) attempt 1 started/);
    tmux('send-keys', '-t', 'cli', 'C-c');
    await waitForScreen(new RegExp(`Cancel job ${jobId} too\\? \\[y/N\\]`));
    tmux('send-keys', '-t', 'cli', 'y', 'Enter');

    expect(await exitCode()).toBe('130');
    expect(screen()).toContain(
      '✗ failed: cancelled: interrupted from the claudebox command line (Ctrl-C)',
    );
    expect(await finalState(jobId)).toBe('failed');
    expect(await client.result(jobId, { timeoutMs: 0 })).toMatchObject({ cancelled: true });
  });

  it('asks on the terminal even when stdin is a pipe; a second Ctrl-C means cancel', async () => {
    startInPane('run --follow -', 'sleep 30');
    const [, jobId = ''] = await waitForScreen(/▶ job (\S+) attempt 1 started/);
    tmux('send-keys', '-t', 'cli', 'C-c');
    await waitForScreen(/too\? \[y\/N\]/);
    tmux('send-keys', '-t', 'cli', 'C-c');

    expect(await exitCode()).toBe('130');
    expect(await finalState(jobId)).toBe('failed');
    expect(await client.result(jobId, { timeoutMs: 0 })).toMatchObject({ cancelled: true });
  });

  it('leaves the job running on a plain Enter, saying how to follow it again', async () => {
    const jobId = await client.enqueue({ prompt: 'sleep 30' });
    startInPane(`events ${jobId}`);
    await waitForScreen(/▶ job \S+ attempt 1 started/);
    tmux('send-keys', '-t', 'cli', 'C-c');
    await waitForScreen(/too\? \[y\/N\]/);
    tmux('send-keys', '-t', 'cli', 'Enter');

    expect(await exitCode()).toBe('130');
    expect(screen()).toMatch(
      new RegExp(`Follow it again with: claudebox events ${jobId} --from \\d+`),
    );
    expect(await queue.getJobState(jobId)).toBe('active');
    await client.cancel(jobId, 'test over');
    expect(await finalState(jobId)).toBe('failed');
  });
});
