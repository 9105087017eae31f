import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, inject, it, onTestFinished } from 'vitest';
import type { ExecuteEvent } from '../../src/contract/index.js';
import {
  createQueue,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';
import { CliProcesses, cli, fakeIo } from './support.js';

const redisUrl = inject('redisUrl');

describe('claudebox run', () => {
  let queueName: string;
  let env: Record<string, string>;
  let queue: Queue;
  let worker: TestWorker | undefined;
  const processes = new CliProcesses();

  beforeEach(() => {
    queueName = uniqueQueueName();
    env = { REDIS_URL: redisUrl, QUEUE_NAME: queueName };
    queue = createQueue(redisUrl, queueName);
  });

  afterEach(async () => {
    const leftovers = await processes.reap();
    await worker?.worker.shutdown(0);
    worker = undefined;
    await queue.obliterate({ force: true });
    await queue.close();
    expect(leftovers, 'claudebox processes still running after the test').toEqual([]);
  });

  const startWorker = async (bin: string): Promise<void> => {
    worker = await startTestWorker({ redisUrl, queueName, claudeBin: fixture(bin) });
  };

  it('--follow prints the run as text and exits 0 when it completes', async () => {
    await startWorker('claude-success.mjs');
    const run = processes.spawn(['run', '--follow', 'hello there'], env);

    expect(await run.exited).toBe(0);
    const lines = run.stdout().trimEnd().split('\n');
    const jobId = /^· job (\S+) queued$/.exec(lines[0] ?? '')?.[1];
    expect(jobId).toBeDefined();
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(
        new RegExp(`^▶ job ${jobId} attempt 1 started \\(pid \\d+, session [0-9a-f]{8}…\\)$`),
      ),
      // A job that names no working directory gets one of its own (the tests run isolated).
      expect.stringMatching(/^· cwd \/var\/lib\/claudebox\/scratch\/[0-9a-f]{32}$/),
      expect.stringMatching(/^prompt 11 bytes sha256 [0-9a-f]{64}$/),
      '= success: 1 turn, $0.0123',
      expect.stringMatching(/^✓ completed in \d+\.\ds \(\$0\.0123\)$/),
    ]);
    expect(run.stderr()).toBe('');
  });

  it('--follow exits 1 and says why when the run fails', async () => {
    await startWorker('claude-api-error.mjs');
    const run = processes.spawn(['run', '--follow', 'hello'], env);

    expect(await run.exited).toBe(1);
    expect(run.stdout()).toContain('= error: 1 turn, $0.0000\n');
    expect(run.stdout()).toContain(
      '✗ failed: claude reported an error (exited with code 1): API Error: 500 ' +
        '{"type":"error","error":{"type":"api_error","message":"Internal server error"}}\n',
    );
  });

  it('--follow --json prints every event of the run as one JSON line, in order', async () => {
    await startWorker('claude-success.mjs');
    const run = processes.spawn(['run', '--follow', '--json', 'hello'], env);

    expect(await run.exited).toBe(0);
    const events = run
      .stdout()
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as ExecuteEvent);
    expect(events.map((event) => event.type)).toEqual([
      'started',
      'output',
      'output',
      'output',
      'completed',
    ]);
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('without --follow prints the job id and enqueues the request the options describe', async () => {
    const session = randomUUID();
    const run = processes.spawn(
      [
        'run',
        '--cwd',
        'repo',
        '--tools',
        'Read,Bash(git log:*)',
        '--disallowed-tools',
        'WebFetch',
        '--timeout',
        '90',
        '--idle-timeout',
        '30',
        '--resume',
        session,
        '--model',
        'sonnet',
        '--max-turns',
        '7',
        '--permission-mode',
        'acceptEdits',
        '--append-system-prompt',
        'Be brief.',
        '--profile',
        'github',
        '--attempts',
        '3',
        'Fix the bug',
      ],
      env,
    );

    expect(await run.exited).toBe(0);
    const jobId = run.stdout().trim();
    const job = await queue.getJob(jobId);
    expect(job?.data).toEqual({
      prompt: 'Fix the bug',
      workingDir: 'repo',
      allowedTools: ['Read', 'Bash(git log:*)'],
      disallowedTools: ['WebFetch'],
      timeout: 90,
      idleTimeout: 30,
      resumeSessionId: session,
      model: 'sonnet',
      maxTurns: 7,
      permissionMode: 'acceptEdits',
      appendSystemPrompt: 'Be brief.',
      profile: 'github',
    });
    expect(job?.opts.attempts).toBe(3);
  });

  it('enqueues the later request fields from their options, --add-dir as often as given', async () => {
    const session = randomUUID();
    const run = processes.spawn(
      [
        'run',
        '--resume',
        session,
        '--fork-session',
        '--fallback-model',
        'claude-haiku-4-5',
        '--system-prompt',
        'You are terse.',
        '--effort',
        'high',
        '--builtin-tools',
        '',
        '--add-dir',
        'repo/docs',
        '--add-dir',
        'shared',
        '--include-partial-messages',
        '--workspace-source',
        '/srv/repos/app',
        '--workspace-ref',
        'main',
        '--workspace-commit',
        'Fix the bug',
      ],
      env,
    );

    expect(await run.exited).toBe(0);
    const job = await queue.getJob(run.stdout().trim());
    expect(job?.data).toEqual({
      prompt: 'Fix the bug',
      resumeSessionId: session,
      forkSession: true,
      fallbackModel: 'claude-haiku-4-5',
      systemPrompt: 'You are terse.',
      effort: 'high',
      tools: [],
      addDirs: ['repo/docs', 'shared'],
      includePartialMessages: true,
      workspace: { source: '/srv/repos/app', ref: 'main', commit: true },
    });
  });

  it('exits 2 on --workspace-source without --workspace-ref, enqueuing nothing', async () => {
    const io = fakeIo(env);
    expect(await cli(['run', '--workspace-source', '/srv/repos/app', 'hi'], io)).toBe(2);
    expect(io.stderrText()).toContain(
      '--workspace-source and --workspace-ref go together (--workspace-commit with them)',
    );
    expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed')).toBe(0);
  });

  it('exits 2 naming the options of bad later fields', async () => {
    const io = fakeIo(env);
    expect(
      await cli(
        ['run', '--effort', 'huge', '--fork-session', '--builtin-tools', 'Bash(x)', 'hi'],
        io,
      ),
    ).toBe(2);
    expect(io.stderrText()).toBe(
      'claudebox: invalid request: --builtin-tools: "Bash(x)" is not a built-in tool name such as "Read"; ' +
        '--effort: must be one of low, medium, high, xhigh, max\n',
    );
    const fork = fakeIo(env);
    expect(await cli(['run', '--fork-session', 'hi'], fork)).toBe(2);
    expect(fork.stderrText()).toBe(
      'claudebox: invalid request: --fork-session: needs --resume: only a resumed session can be forked\n',
    );
  });

  it('reads the prompt from stdin for "-", however big', async () => {
    const prompt = `${'a long prompt line\n'.repeat(20_000)}the end`; // ~380 KB: too big for argv
    const run = processes.spawn(['run', '-'], env, { stdin: prompt });

    expect(await run.exited).toBe(0);
    const job = await queue.getJob(run.stdout().trim());
    expect(job?.data).toEqual({ prompt });
  });

  it('exits 2 where the prompt on stdin is not UTF-8 text, rather than send another, and enqueues nothing', async () => {
    const waiting = await queue.getWaitingCount();
    const io = fakeIo(env, { stdin: Buffer.from('a prompt \xff\xfe of bytes', 'latin1') });
    expect(await cli(['run', '-'], io)).toBe(2);
    expect(io.stderrText()).toBe('claudebox: the prompt on stdin is not UTF-8 text\n');
    expect(await queue.getWaitingCount()).toBe(waiting);
  });

  it('exits 2 naming each bad field, and enqueues nothing', async () => {
    const run = processes.spawn(
      [
        'run',
        '--max-turns',
        '0',
        '--model',
        'not a model',
        '--profile',
        '../github',
        '--tools',
        'Bash,',
        ' ',
      ],
      env,
    );

    expect(await run.exited).toBe(2);
    expect(run.stderr()).toBe(
      'claudebox: invalid request: prompt: must not be empty; ' +
        '--model: must be a model name or alias; --max-turns: must be positive; ' +
        '--profile: must be a profile name: 1 to 64 letters, digits, . _ or -\n',
    );
    expect(run.stdout()).toBe('');
    expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed')).toBe(0);
  });

  it('exits 2 with a clear message for an option value that is no number, enqueuing nothing', async () => {
    for (const [args, message] of [
      [['--timeout', 'abc'], '--timeout: "abc" is not a number of seconds'],
      [['--max-turns', '2.5'], '--max-turns: "2.5" is not a whole number'],
      [['--max-turns', '99999999999999999999'], '--max-turns: must be at most 9007199254740991'],
      [['--attempts', '0'], '--attempts: must be at least 1'],
      [['--json'], '--json goes with --follow'],
      [['--on-interrupt', 'cancel'], '--on-interrupt goes with --follow'],
    ] as const) {
      const io = fakeIo(env);
      expect(await cli(['run', ...args, 'hello'], io)).toBe(2);
      expect(io.stderrText()).toBe(`claudebox: ${message}\n`);
    }
    const io = fakeIo(env);
    expect(await cli(['run', '--on-interrupt', 'later', 'hello'], io)).toBe(2);
    expect(io.stderrText()).toContain("argument 'later' is invalid");
    expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed')).toBe(0);
  });

  it('takes a job budget, and a JSON Schema inline or from a file', async () => {
    const schema = { type: 'object', properties: { verdict: { type: 'string' } } };
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-schema-'));
    try {
      writeFileSync(join(dir, 'answer.json'), JSON.stringify(schema));
      for (const given of [join(dir, 'answer.json'), JSON.stringify(schema)]) {
        const io = fakeIo(env);
        const args = ['run', '--max-budget-usd', '2.5', '--json-schema', given, 'Judge it'];
        expect(await cli(args, io)).toBe(0);
        const job = await queue.getJob(io.stdoutLines()[0] ?? '');
        expect(job?.data).toEqual({ prompt: 'Judge it', maxBudgetUsd: 2.5, jsonSchema: schema });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on a budget or a JSON Schema the job could not use, enqueuing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'schemas-'));
    const big = join(dir, 'big.json');
    writeFileSync(big, `{${' '.repeat(1024 * 1024)}}`);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const [args, message] of [
      [
        ['--json-schema', '/dev/zero'],
        '--json-schema: cannot read /dev/zero: it is not a regular file',
      ],
      // Read to its end, it would not have ended.
      [['--json-schema', fifo], `--json-schema: cannot read ${fifo}: it is not a regular file`],
      [
        ['--json-schema', big],
        `--json-schema: cannot read ${big}: it holds 1048578 bytes, more than 1048576`,
      ],
      [
        ['--max-budget-usd', '0'],
        'invalid request: --max-budget-usd: must be at least 0.01 dollars',
      ],
      [['--max-budget-usd', 'lots'], '--max-budget-usd: "lots" is not a number of dollars'],
      [['--json-schema', '{"type":'], '--json-schema: the value is not JSON: '],
      [
        ['--json-schema', '/nonexistent/schema.json'],
        '--json-schema: cannot read /nonexistent/schema.json: ENOENT',
      ],
      [
        ['--json-schema', '{"type":"strnig"}'],
        'invalid request: --json-schema: is not a valid JSON Schema: ',
      ],
    ] as const) {
      const io = fakeIo(env);
      expect(await cli(['run', ...args, 'hello'], io)).toBe(2);
      expect(io.stderrText()).toContain(`claudebox: ${message}`);
    }
    expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed')).toBe(0);
  });
});
