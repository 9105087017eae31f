import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/index.js';
import { runTools } from '../../tools/program.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../tools/main.ts', import.meta.url));

/** `npm run stand-in -- <argv>`, in-process; it serves until `stopped` settles. */
function runStandInCommand(argv: readonly string[], io: CliIo & { stopped?: Promise<unknown> }) {
  return runTools(['stand-in', ...argv], io, () => io.stopped ?? new Promise(() => undefined));
}

/** A CliIo that keeps what is printed as lines. */
function captureIo(
  stopped?: Promise<unknown>,
): CliIo & { out: string[]; err: string[]; stopped?: Promise<unknown> } {
  const out: string[] = [];
  const err: string[] = [];
  const lines = (into: string[]) => (text: string) =>
    into.push(...text.replace(/\n$/, '').split('\n'));
  return {
    out,
    err,
    stdout: lines(out),
    stderr: lines(err),
    env: {},
    cwd: ROOT,
    platform: process.platform,
    stdin: Readable.from([]),
    isTTY: { stdin: false, stdout: false, stderr: false },
    onInterrupt: () => () => undefined,
    openTerminal: () => null,
    ...(stopped ? { stopped } : {}),
  };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('the stand-in command', () => {
  it.each([
    [['--port', 'eighty'], /--port must be a whole number from 0 to 65535, not "eighty"/],
    [['--port', '70000'], /--port must be a whole number/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['leftover'], /Unexpected argument 'leftover'/],
    [['--host', ''], /--host must not be empty/],
  ])('exits 2 naming the bad argument in %j', async (argv, message) => {
    const io = captureIo();
    expect(await runStandInCommand(argv, io)).toBe(2);
    expect(io.err[0]).toMatch(message);
    expect(io.out).toEqual([]);
  });

  it('prints the usage with the script syntax for --help and exits 0', async () => {
    const io = captureIo();
    expect(await runStandInCommand(['--help'], io)).toBe(0);
    expect(io.out.join('\n')).toMatch(/Usage: stand-in \[--port N\] \[--host H\]/);
    expect(io.out.join('\n')).toMatch(/stand-in: bash <command>/);
  });

  it('says how to point the CLI at it, logs a line per request, and stops when told', async () => {
    let stop: () => void = () => undefined;
    const io = captureIo(new Promise<void>((resolve) => (stop = resolve)));
    const running = runStandInCommand([], io);
    await until(() => io.out.length > 0);

    const url = /ANTHROPIC_BASE_URL=(\S+) ANTHROPIC_API_KEY=any/.exec(io.out[0] ?? '')?.[1];
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await fetch(`${url ?? ''}/v1/messages?beta=true`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi\nstand-in: http 503' }] }),
    });
    await until(() => io.out.length > 1);
    expect(io.out[1]).toMatch(
      /^\S+Z POST \/v1\/messages\?beta=true 503 step 1\/1 \(http\) -> error$/,
    );

    stop();
    expect(await running).toBe(0);
  });

  it('exits 1 with the reason when the port is taken', async () => {
    let stop: () => void = () => undefined;
    const first = captureIo(new Promise<void>((resolve) => (stop = resolve)));
    const running = runStandInCommand([], first);
    await until(() => first.out.length > 0);
    const port = /:(\d+);/.exec(first.out[0] ?? '')?.[1] ?? '';

    const second = captureIo();
    expect(await runStandInCommand(['--port', port], second)).toBe(1);
    expect(second.err[0]).toMatch(/cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    stop();
    await running;
  });
});

describe('the stand-in command as a process', () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('exits 0 on %s', async (signal) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', MAIN, 'stand-in', '--port', '0'], {
      cwd: ROOT,
    });
    child = proc;
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    await until(() => out.includes('\n') || proc.exitCode !== null);

    const url = /ANTHROPIC_BASE_URL=(\S+)/.exec(out)?.[1] ?? '';
    expect(url).not.toBe('');
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    await until(() => out.includes('HEAD / 200 probe'));

    proc.kill(signal);
    expect(await exited).toBe(0);
  });
});
