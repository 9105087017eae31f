import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { Terminal } from '../../src/cli/io.js';
import { findFreePort } from '../support/redis-server.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
  collectEvents,
} from '../support/worker.js';
import { cli, fakeIo, type FakeIo } from './support.js';
import { runPids } from '../support/processes.js';

const redisUrl = inject('redisUrl');

describe('claudebox events, result and cancel', () => {
  let queueName: string;
  let env: Record<string, string>;
  let client: ClaudeboxClient;
  let queue: Queue;
  let worker: TestWorker | undefined;

  beforeEach(() => {
    queueName = uniqueQueueName();
    env = { REDIS_URL: redisUrl, QUEUE_NAME: queueName };
    client = createClient({ url: redisUrl, queueName });
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    await worker?.worker.shutdown(0);
    worker = undefined;
    await client.close();
    await queue.obliterate({ force: true });
    await queue.close();
  });

  const startWorker = async (bin: string): Promise<void> => {
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture(bin) });
  };
  const io = (options?: Parameters<typeof fakeIo>[1]): FakeIo => fakeIo(env, options);

  /**
   * The result once the job's state says it ended. The final event comes before that, and
   * client.result can make up an "abandoned" result when the job ends between its two reads.
   */
  const finalResult = async (jobId: string) => {
    await waitFor('the job to end', async () => {
      const state = await queue.getJobState(jobId);
      return state === 'completed' || state === 'failed' ? true : undefined;
    });
    return client.result(jobId, { timeoutMs: 0 });
  };

  /** Enqueues a slow run and resolves once it is running. */
  const startSlowRun = async (seconds: number): Promise<string> => {
    // An id no other test's job has: the run's processes are found by it.
    const jobId = await client.enqueue({ prompt: `sleep ${seconds}` }, { jobId: randomUUID() });
    // Running: the CLI's process is there, not just the job taken from the queue.
    await waitFor('the run to start', () => (runPids(jobId).length > 0 ? true : undefined));
    return jobId;
  };

  describe('events', () => {
    it('--no-follow prints the history from --from on, as text or as JSON lines', async () => {
      await startWorker('claude-success.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      await finalResult(jobId);
      const all = await collectEvents(client.events(jobId));

      const text = io();
      expect(await cli(['events', jobId, '--from', '4', '--no-follow'], text)).toBe(0);
      expect(text.stdoutLines()).toEqual([
        '= success: 1 turn, $0.0123',
        expect.stringMatching(/^✓ completed in \d+\.\ds \(\$0\.0123\)$/),
      ]);

      const json = io();
      expect(await cli(['events', jobId, '--from', '2', '--json', '--no-follow'], json)).toBe(0);
      expect(json.stdoutLines().map((line) => JSON.parse(line))).toEqual(all.slice(1));
    });

    it('--no-follow prints nothing for a job that has not started, and exits 0', async () => {
      const jobId = await client.enqueue({ prompt: 'hi' });
      const out = io();
      expect(await cli(['events', jobId, '--no-follow'], out)).toBe(0);
      expect(out.out).toEqual([]);
    });

    it('follows a running job to its end and exits as the run did', async () => {
      await startWorker('claude-slow.mjs');
      const jobId = await startSlowRun(2);
      const out = io();
      expect(await cli(['events', jobId], out)).toBe(0);
      expect(out.stdoutLines()[0]).toMatch(/^▶ job \S+ attempt 1 started/);
      expect(out.stdoutLines()).toContain('· tick');
      expect(out.stdoutLines().at(-1)).toMatch(/^✓ completed in /);
      expect(out.handlers()).toBe(0);
    });

    it('exits 1 after following a run that failed', async () => {
      await startWorker('claude-api-error.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      const out = io();
      expect(await cli(['events', jobId, '--from', '3'], out)).toBe(1);
      expect(out.stdoutLines().at(-1)).toMatch(/^✗ failed: claude reported an error/);
    });

    it('follows a job retried by hand past the earlier end, and exits as the retry did', async () => {
      await startWorker('claude-api-error.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      expect(await finalResult(jobId)).toMatchObject({ success: false, attempt: 1 });
      await worker?.worker.shutdown(0);
      await startWorker('claude-success.mjs');
      await (await queue.getJob(jobId))?.retry('failed');
      await waitFor('the retry to end', async () =>
        (await finalResult(jobId)).attempt === 2 ? true : undefined,
      );

      const out = io();
      expect(await cli(['events', jobId], out)).toBe(0);
      const lines = out.stdoutLines();
      expect(lines.filter((line) => line.startsWith('✗ failed'))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(/^✓ completed in /);
    });

    it('exits 3 at once for a job that does not exist', async () => {
      for (const args of [[], ['--no-follow']]) {
        const out = io();
        expect(await cli(['events', 'no-such-job', ...args], out)).toBe(3);
        expect(out.stderrText()).toBe(
          `claudebox: job no-such-job not found in queue ${queueName}\n`,
        );
      }
    });

    it('rejects a --from that is not a seq', async () => {
      const out = io();
      expect(await cli(['events', '1', '--from', '0'], out)).toBe(2);
      expect(out.stderrText()).toBe('claudebox: --from: must be at least 1\n');
    });

    it('on Ctrl-C without a terminal detaches, says how to follow again, and exits 130', async () => {
      await startWorker('claude-slow.mjs');
      const jobId = await startSlowRun(30);
      const out = io();
      const exit = cli(['events', jobId], out);
      await waitFor('the first events', () => (out.stdoutLines().length >= 2 ? true : undefined));
      out.interrupt();

      expect(await exit).toBe(130);
      const printed = out.stdoutLines().length;
      expect(out.stderrText()).toBe(
        `claudebox: detached; job ${jobId} keeps running. Follow it again with: ` +
          `claudebox events ${jobId} --from ${printed + 1}\n`,
      );
      expect(await queue.getJobState(jobId)).toBe('active');
      expect(out.handlers()).toBe(0);
    });

    it('on Ctrl-C at a terminal asks, and on yes cancels the job and shows how it ended', async () => {
      await startWorker('claude-slow.mjs');
      const jobId = await startSlowRun(30);
      const questions: string[] = [];
      const terminal: Terminal = {
        ask: (question) => {
          questions.push(question);
          return Promise.resolve('y');
        },
        close: () => undefined,
      };
      const out = io({ tty: true, terminal: () => terminal });
      const exit = cli(['events', jobId], out);
      await waitFor('the first events', () => (out.stdoutLines().length >= 2 ? true : undefined));
      out.interrupt();

      expect(await exit).toBe(130);
      expect(questions).toEqual([`Cancel job ${jobId} too? [y/N] `]);
      expect(out.stderrText()).toBe(
        `claudebox: job ${jobId} is running: its worker is stopping it\n`,
      );
      expect(out.stdoutLines().at(-1)).toBe(
        '✗ failed: cancelled: interrupted from the claudebox command line (Ctrl-C)',
      );
      expect(await finalResult(jobId)).toMatchObject({ cancelled: true });
    });
  });

  describe('run --follow in-process', () => {
    it('on Ctrl-C without a terminal cancels the job it started', async () => {
      await startWorker('claude-slow.mjs');
      const out = io();
      const exit = cli(['run', '--follow', 'sleep 30'], out);
      await waitFor('the run to start', () =>
        out.stdoutLines().some((line) => line.startsWith('▶')) ? true : undefined,
      );
      out.interrupt();

      expect(await exit).toBe(130);
      const jobId = /^· job (\S+) queued$/.exec(out.stdoutLines()[0] ?? '')?.[1] ?? '';
      expect(await finalResult(jobId)).toMatchObject({
        cancelled: true,
        failure: 'cancelled',
      });
    });
  });

  describe('result', () => {
    it('prints the result as pretty JSON and exits 0 when the run succeeded', async () => {
      await startWorker('claude-success.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      const out = io();
      expect(await cli(['result', jobId, '--wait', '20'], out)).toBe(0);
      const printed = out.out.join('');
      expect(printed).toBe(`${JSON.stringify(await finalResult(jobId), null, 2)}\n`);
      expect(JSON.parse(printed)).toMatchObject({ jobId, success: true });
    });

    it('exits 1 for a failed run, still printing its result', async () => {
      await startWorker('claude-api-error.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      await finalResult(jobId);
      const out = io();
      expect(await cli(['result', jobId], out)).toBe(1);
      expect(JSON.parse(out.out.join(''))).toMatchObject({ success: false, apiErrorStatus: 500 });
    });

    it('exits 3 for an unknown job, and for one not finished within the wait', async () => {
      const unknown = io();
      expect(await cli(['result', 'no-such-job'], unknown)).toBe(3);
      expect(unknown.stderrText()).toBe(
        `claudebox: job no-such-job not found in queue ${queueName}\n`,
      );

      const jobId = await client.enqueue({ prompt: 'hi' }); // no worker: it waits
      const now = io();
      expect(await cli(['result', jobId], now)).toBe(3);
      expect(now.stderrText()).toBe(
        `claudebox: job ${jobId} has not finished yet (--wait <seconds> waits for it)\n`,
      );
      const waited = io();
      expect(await cli(['result', jobId, '--wait', '0.5'], waited)).toBe(3);
      expect(waited.stderrText()).toBe(`claudebox: job ${jobId} did not finish within 0.5s\n`);
      expect(waited.out).toEqual([]);
    });
  });

  describe('cancel', () => {
    it('stops a running job', async () => {
      await startWorker('claude-slow.mjs');
      const jobId = await startSlowRun(30);
      const out = io();
      expect(await cli(['cancel', jobId, '--reason', 'changed my mind'], out)).toBe(0);
      expect(out.out.join('')).toBe(`job ${jobId} is running: its worker is stopping it\n`);
      expect(await finalResult(jobId)).toMatchObject({
        cancelled: true,
        error: 'cancelled: changed my mind',
      });
    });

    it('cancels a waiting job before it starts', async () => {
      const jobId = await client.enqueue({ prompt: 'hi' });
      const out = io();
      expect(await cli(['cancel', jobId], out)).toBe(0);
      expect(out.out.join('')).toBe(`job ${jobId} cancelled before it started (it was waiting)\n`);
    });

    it('says a finished job had already finished', async () => {
      await startWorker('claude-success.mjs');
      const jobId = await client.enqueue({ prompt: 'hi' });
      await finalResult(jobId);
      const out = io();
      expect(await cli(['cancel', jobId], out)).toBe(0);
      expect(out.out.join('')).toBe(`job ${jobId} had already finished (completed)\n`);
    });

    it('exits 3 for a job that does not exist', async () => {
      const out = io();
      expect(await cli(['cancel', randomUUID().slice(0, 8)], out)).toBe(3);
      expect(out.stderrText()).toMatch(/^claudebox: job \S+ not found in queue test-\S+\n$/);
    });
  });
});

describe('claudebox configuration and usage', () => {
  it('exits 1 with one line naming a bad variable', async () => {
    const out = fakeIo({ REDIS_URL: redisUrl, QUEUE_NAME: 'no spaces allowed' });
    expect(await cli(['result', '1'], out)).toBe(1);
    expect(out.stderrText()).toBe(
      'claudebox: invalid configuration: QUEUE_NAME="no spaces allowed": ' +
        'must be letters, digits, _ { } . or -\n',
    );
  });

  it("reads only the queue's address: a bad variable of the worker's own stops no command", async () => {
    const out = fakeIo({ REDIS_URL: redisUrl, QUEUE_NAME: uniqueQueueName(), CONCURRENCY: 'abc' });
    expect(await cli(['result', 'no-such-job'], out)).toBe(3);
    expect(out.stderrText()).toMatch(/^claudebox: job no-such-job not found in queue test-\S+\n$/);
  });

  it('exits 1 with one line naming REDIS_URL when Redis is unreachable', async () => {
    const port = await findFreePort();
    const out = fakeIo({ REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(await cli(['cancel', '1'], out)).toBe(1);
    expect(out.stderrText()).toMatch(
      new RegExp(
        `^claudebox: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\): .+\\n$`,
      ),
    );
  });

  it('names in --help every variable the commands read, EVENTS_PUBSUB among them', async () => {
    for (const command of [[], ['run'], ['events'], ['result'], ['patch'], ['cancel'], ['serve']]) {
      const out = fakeIo({});
      expect(await cli([...command, '--help'], out)).toBe(0);
      for (const name of ['REDIS_URL', 'QUEUE_NAME', 'QUEUE_PREFIX', 'EVENTS_PUBSUB']) {
        expect(out.out.join('')).toContain(name);
      }
    }
  });

  it('documents the exit codes in --help and exits 0; exits 2 on a usage mistake', async () => {
    for (const command of [[], ['run'], ['events'], ['result'], ['cancel']]) {
      const out = fakeIo({});
      expect(await cli([...command, '--help'], out)).toBe(0);
      expect(out.out.join('')).toContain('Exit codes:\n  0 ');
      expect(out.out.join('')).toContain('  130  interrupted');
    }
    const unknown = fakeIo({});
    expect(await cli(['result', '1', '--bogus'], unknown)).toBe(2);
    expect(unknown.stderrText()).toContain("error: unknown option '--bogus'");
    expect(await cli(['nope'], fakeIo({}))).toBe(2);
    expect(await cli([], fakeIo({}))).toBe(2);
  });
});
