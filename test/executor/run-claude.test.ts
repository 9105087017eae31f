import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judgeRun } from '../../src/executor/outcome.js';
import { runClaude, type RunLine, type RunSpec } from '../../src/executor/run.js';
import { RunPauses } from '../../src/executor/run-pauses.js';
import { RUN_MARKER } from '../../src/executor/env.js';
import { isAlive, pidsWithEnv } from '../support/processes.js';

const fixture = (name: string): string =>
  new URL(`../fixtures/bin/${name}`, import.meta.url).pathname;

interface Run {
  readonly lines: RunLine[];
  readonly spec: RunSpec;
}

function spec(bin: string, overrides: Partial<RunSpec> = {}): Run {
  const lines: RunLine[] = [];
  const runId = randomUUID();
  return {
    lines,
    spec: {
      bin,
      args: ['-p', '--verbose', '--output-format', 'stream-json'],
      cwd: tmpdir(),
      env: { PATH: process.env.PATH ?? '', [RUN_MARKER]: runId },
      prompt: 'hello',
      marker: { name: RUN_MARKER, value: runId },
      timeoutMs: 30_000,
      killGraceMs: 500,
      maxOutputBytes: 1024 * 1024,
      maxLineBytes: 8 * 1024 * 1024,
      onLine: (line) => void lines.push(line),
      ...overrides,
    },
  };
}

const stdoutLines = (lines: RunLine[]): RunLine[] => lines.filter((l) => l.stream === 'stdout');

describe('runClaude', () => {
  it('never reports a negative duration when the clock steps back during the run', async () => {
    let time = 1_000_000;
    const { spec: s } = spec(fixture('claude-success.mjs'), { now: () => (time -= 60_000) });
    const outcome = await runClaude(s);
    expect(outcome.exitCode).toBe(0);
    expect(outcome.durationMs).toBe(0);
  });

  it('succeeds when the CLI exits 0 after a result line with is_error false', async () => {
    const { spec: s, lines } = spec(fixture('claude-success.mjs'));
    const outcome = await runClaude(s);
    const report = judgeRun(outcome, s.timeoutMs);

    expect(report).toMatchObject({
      success: true,
      failure: null,
      error: null,
      exitCode: 0,
      timedOut: false,
      costUsd: 0.0123,
      numTurns: 1,
      resultSubtype: 'success',
      isError: false,
    });
    expect(report.finalOutput).toMatch(/^done: 5 bytes/);
    expect(report.streamSessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(stdoutLines(lines).map((l) => JSON.parse(l.text).type)).toEqual([
      'system',
      'assistant',
      'result',
    ]);
    expect(report.output).toBe(
      stdoutLines(lines)
        .map((l) => `${l.text}\n`)
        .join(''),
    );
  });

  it('fails with the CLI error text and exit code when is_error is true', async () => {
    const { spec: s } = spec(fixture('claude-api-error.mjs'));
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    expect(report.success).toBe(false);
    expect(report.failure).toBe('cli-error');
    expect(report.exitCode).toBe(1);
    expect(report.isError).toBe(true);
    expect(report.apiErrorStatus).toBe(500);
    expect(report.error).toContain('exited with code 1');
    expect(report.error).toContain('API Error: 500');
    expect(report.error).not.toContain('\n');
  });

  it('passes every stderr line on, in order', async () => {
    const { spec: s, lines } = spec(fixture('claude-stderr.mjs'));
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    expect(report.success).toBe(true);
    expect(lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual([
      'warning: first complaint',
      'warning: second complaint',
    ]);
  });

  it('delivers a single 5 MiB stdout line as one line', async () => {
    const { spec: s, lines } = spec(fixture('claude-long-line.mjs'));
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    const out = stdoutLines(lines);
    expect(out).toHaveLength(3);
    expect(out[1]?.partial).toBe(false);
    expect(out[1]?.text.length).toBeGreaterThan(5 * 1024 * 1024);
    expect(JSON.parse(out[1]?.text ?? '').message.content[0].text).toHaveLength(5 * 1024 * 1024);
    expect(report.success).toBe(true);
    expect(report.finalOutput).toBe('long line printed');
  });

  it('splits a line longer than maxLineBytes into partial pieces that add up to it', async () => {
    const { spec: s, lines } = spec(fixture('claude-long-line.mjs'), { maxLineBytes: 1024 * 1024 });
    await runClaude(s);

    const out = stdoutLines(lines);
    const pieces = out.slice(1, -1);
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.slice(0, -1).every((l) => l.partial)).toBe(true);
    expect(pieces.at(-1)?.partial).toBe(false);
    const whole = JSON.parse(pieces.map((l) => l.text).join(''));
    expect(whole.message.content[0].text).toHaveLength(5 * 1024 * 1024);
  });

  it('caps the stored output, keeping head and tail around a marker', async () => {
    const { spec: s } = spec(fixture('claude-long-line.mjs'), { maxOutputBytes: 4096 });
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    expect(report.outputTruncated).toBe(true);
    expect(report.outputBytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(report.output.length).toBeLessThan(4096 + 100);
    expect(report.output).toMatch(/^\{"type":"system"/);
    expect(report.output).toMatch(/bytes of output truncated/);
    expect(report.output.trimEnd()).toMatch(/"long line printed".*\}$/);
  });

  it('delivers a 1 MiB prompt intact on stdin', async () => {
    const prompt = 'é'.repeat(512 * 1024) + '\n-- --allowedTools "quoted" $HOME';
    const { spec: s } = spec(fixture('claude-success.mjs'), { prompt });
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    const digest = createHash('sha256').update(prompt).digest('hex');
    expect(Buffer.byteLength(prompt)).toBeGreaterThan(1024 * 1024);
    expect(report.finalOutput).toBe(`done: ${Buffer.byteLength(prompt)} bytes sha256 ${digest}`);
  });

  it('stops a run that outlives its timeout, ignores signals and leaves a grandchild: nothing of it survives', async () => {
    const { spec: s, lines } = spec(fixture('claude-stubborn.mjs'), { timeoutMs: 1500 });
    let pid = 0;
    const outcome = await runClaude({ ...s, onSpawn: (p) => (pid = p) });
    const report = judgeRun(outcome, s.timeoutMs);

    const grandchild = JSON.parse(
      stdoutLines(lines).find((l) => l.text.includes('grandchild'))?.text ?? '{}',
    ).pid as number;
    expect(grandchild).toBeGreaterThan(0);
    expect(report).toMatchObject({ success: false, failure: 'timeout', timedOut: true });
    expect(report.error).toBe('timed out after 1.5s; it ignored SIGINT and was killed');
    expect(outcome.signal).toBe('SIGKILL');
    expect(isAlive(pid)).toBe(false);
    expect(isAlive(grandchild)).toBe(false);
    expect(pidsWithEnv(RUN_MARKER, s.marker.value)).toEqual([]);
  });

  it('counts no time the worker holds the run stopped as the run’s idleness', async () => {
    // Silent after its init line: idle after 1 s, unless the whole run is one pause.
    const held = new RunPauses();
    const { spec: pausedRun } = spec(fixture('claude-hangs.mjs'), {
      prompt: 'silent',
      idleTimeoutMs: 1000,
      timeoutMs: 4000,
      pauses: held,
    });
    const paused = await held.during(() => runClaude(pausedRun));
    expect(paused.stoppedBy).toBe('timeout');

    // The same run, held for a while only: idle once the hold is over.
    const briefly = new RunPauses();
    const { spec: heldRun } = spec(fixture('claude-hangs.mjs'), {
      prompt: 'silent',
      idleTimeoutMs: 1000,
      timeoutMs: 60_000,
      pauses: briefly,
    });
    const running = runClaude(heldRun);
    await briefly.during(() => new Promise((resolve) => setTimeout(resolve, 1500)));
    expect((await running).stoppedBy).toBe('idle');
  });

  it('stops what a successful run left running in the background', async () => {
    const { spec: s, lines } = spec(fixture('claude-leaves-background.mjs'));
    const outcome = await runClaude(s);

    const background = JSON.parse(stdoutLines(lines)[1]?.text ?? '{}').pid as number;
    expect(judgeRun(outcome, s.timeoutMs).success).toBe(true);
    expect(outcome.leftovers).toBe(1);
    expect(isAlive(background)).toBe(false);
    expect(pidsWithEnv(RUN_MARKER, s.marker.value)).toEqual([]);
  });

  it('finds what a run left running by its marker deep in a large environment', async () => {
    // The marker past the first few KB of /proc/<pid>/environ, which is read a piece at a time.
    const { spec: s, lines } = spec(fixture('claude-leaves-background.mjs'));
    const env = { PATH: process.env.PATH ?? '', PADDING: 'x'.repeat(20_000), ...s.env };
    const outcome = await runClaude({ ...s, env });

    const background = JSON.parse(stdoutLines(lines)[1]?.text ?? '{}').pid as number;
    expect(outcome.leftovers).toBe(1);
    expect(isAlive(background)).toBe(false);
    expect(pidsWithEnv(RUN_MARKER, s.marker.value)).toEqual([]);
  });

  it('stops a run when its signal is aborted, and says it was cancelled', async () => {
    const controller = new AbortController();
    // Once it printed its first line: by then it handles SIGINT (a loaded machine can take
    // longer than any fixed wait to start Node).
    const { spec: s } = spec(fixture('claude-slow.mjs'), {
      prompt: 'sleep 30',
      signal: controller.signal,
      onLine: () => controller.abort({ cause: 'cancelled', message: 'changed my mind' }),
      // It exits on SIGINT at once; the grace only bounds how slow a loaded machine may be.
      killGraceMs: 10_000,
    });
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    expect(report).toMatchObject({ failure: 'cancelled', cancelled: true, timedOut: false });
    expect(report.error).toBe('cancelled: changed my mind');
    expect(report.resultSubtype).toBe('error_during_execution');
    expect(pidsWithEnv(RUN_MARKER, s.marker.value)).toEqual([]);
  });

  it('names a CLI that does not exist', async () => {
    const { spec: s } = spec('/nonexistent/claude');
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report).toMatchObject({ success: false, failure: 'spawn-failed', exitCode: null });
    expect(report.error).toBe('could not start claude: /nonexistent/claude does not exist');
  });

  it('names a CLI that is not executable', async () => {
    const bin = join(mkdtempSync(join(tmpdir(), 'claudebox-')), 'claude');
    copyFileSync(fixture('claude-success.mjs'), bin);
    chmodSync(bin, 0o644);
    const { spec: s } = spec(bin);
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report.failure).toBe('spawn-failed');
    expect(report.error).toBe(`could not start claude: ${bin} is not executable`);
  });

  it('ends as not started, naming the CLI, where spawn refuses its arguments (a NUL byte)', async () => {
    const { spec: s } = spec(fixture('claude-success.mjs'), { args: ['-p', 'a\0b'] });
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report.failure).toBe('spawn-failed');
    expect(report.error).toMatch(/^could not start claude at .*claude-success\.mjs: .*null bytes/);
  });

  it('fails a CLI that exits before printing anything, saying so', async () => {
    const { spec: s } = spec(fixture('claude-silent-exit.mjs'));
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report).toMatchObject({ success: false, failure: 'cli-error', exitCode: 3 });
    expect(report.error).toBe(
      'claude exited with code 3 without a result line; it printed nothing on stdout',
    );
  });

  it('fails a run whose result line was too long to read, saying so, not that its pieces were no JSON', async () => {
    // Every line of the fixture is longer than that, the result line among them.
    const { spec: s } = spec(fixture('claude-success.mjs'), { maxLineBytes: 64 });
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report).toMatchObject({ success: false, failure: 'cli-error', exitCode: 0 });
    expect(report.error).toBe(
      'claude exited with code 0 without a result line; 3 stdout line(s) were longer than MAX_LINE_BYTES, too long to read (the result line may be one)',
    );
  });

  it('fails a CLI that prints non-JSON and invalid UTF-8, passing the bytes on as base64', async () => {
    const { spec: s, lines } = spec(fixture('claude-garbage.mjs'));
    const report = judgeRun(await runClaude(s), s.timeoutMs);

    expect(report.success).toBe(false);
    expect(report.exitCode).toBe(0);
    expect(report.error).toContain('without a result line');
    expect(report.error).toContain('"Error: something is not right"');
    expect(report.error).toContain('1 stdout line(s) were not valid UTF-8');
    const binary = stdoutLines(lines)[1];
    expect(binary?.encoding).toBe('base64');
    expect(Buffer.from(binary?.text ?? '', 'base64')).toEqual(Buffer.from([0xff, 0xfe, 0x41]));
  });

  it('stops a CLI that closes stdout but keeps running, instead of hanging until the timeout', async () => {
    const { spec: s } = spec(fixture('claude-closes-stdout.mjs'));
    const started = Date.now();
    const outcome = await runClaude(s);
    const report = judgeRun(outcome, s.timeoutMs);

    expect(Date.now() - started).toBeLessThan(s.timeoutMs);
    expect(report.failure).toBe('cli-error');
    expect(report.error).toBe(
      'claude closed its stdout but kept running; it ignored SIGINT and was killed',
    );
    expect(pidsWithEnv(RUN_MARKER, s.marker.value)).toEqual([]);
  });

  it('pauses reading while the line handler is busy, without losing lines', async () => {
    const seen: string[] = [];
    const { spec: s } = spec(fixture('claude-stderr.mjs'), {
      onLine: async (line) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen.push(line.text);
      },
    });
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(report.success).toBe(true);
    expect(seen).toHaveLength(4);
  });

  it('keeps reading what a run left in its pipes while the line handler is seconds behind', async () => {
    const seen: string[] = [];
    let first = true;
    const { spec: s } = spec(fixture('claude-success.mjs'), {
      // Redis that falls behind as the run ends: the CLI is long gone when its lines are taken.
      onLine: async (line) => {
        if (first) await new Promise((resolve) => setTimeout(resolve, 3000));
        first = false;
        seen.push(JSON.parse(line.text).type);
      },
    });
    const report = judgeRun(await runClaude(s), s.timeoutMs);
    expect(seen).toEqual(['system', 'assistant', 'result']);
    expect(report.success).toBe(true);
  });
});
