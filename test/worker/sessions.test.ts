import { randomUUID } from 'node:crypto';
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { sessionKey, type RunState } from '../../src/contract/index.js';
import { planAttempt } from '../../src/worker/sessions/session-plan.js';
import {
  LocalTranscripts,
  RedisTranscripts,
  SessionStore,
  type Restored,
  type TranscriptSink,
} from '../../src/worker/sessions/sessions.js';

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

const userLine = (text: string): string =>
  `${JSON.stringify({ type: 'user', message: { role: 'user', content: text } })}\n`;
const assistantLine = (text: string): string =>
  `${JSON.stringify({ type: 'assistant', message: { role: 'assistant', content: [{ type: 'text', text }] } })}\n`;

/** A config dir as the CLI leaves it: projects/<slug>/<session>.jsonl */
function writeTranscript(configDir: string, sessionId: string, content: string): string {
  const dir = join(configDir, 'projects', '-work-repo');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${sessionId}.jsonl`);
  writeFileSync(path, content);
  return path;
}

const pathOf = (restored: Restored): string => {
  if (restored.kind !== 'found') throw new Error(`no transcript: ${restored.kind}`);
  return restored.path;
};

const priorState = (sessionId: string, transcriptBaseline = 0): RunState => ({
  attempt: 1,
  sessionId,
  transcriptBaseline,
  lastSeq: 5,
  pid: null,
  result: null,
});

describe('portable sessions', () => {
  let address: { prefix: string; queueName: string };
  let machineA: SessionStore;
  let machineB: SessionStore;
  let dirA: string;
  let dirB: string;
  // The CLI ran in /work/repo on both machines: its sessions are under projects/-work-repo.
  const atA = () => ({ configDir: dirA, cwd: '/work/repo' });
  const atB = () => ({ configDir: dirB, cwd: '/work/repo' });

  beforeEach(() => {
    address = { prefix: 'bull', queueName: `sessions-${randomUUID().slice(0, 8)}` };
    dirA = mkdtempSync(join(tmpdir(), 'claude-a-'));
    dirB = mkdtempSync(join(tmpdir(), 'claude-b-'));
    machineA = new SessionStore(new RedisTranscripts(redis, address, 3600), 1024 * 1024);
    machineB = new SessionStore(new RedisTranscripts(redis, address, 3600), 1024 * 1024);
  });

  it('moves a transcript from one machine to another through Redis, at the same place', async () => {
    const sessionId = randomUUID();
    const path = writeTranscript(dirA, sessionId, userLine('fix the bug') + assistantLine('on it'));
    await machineA.shipper({ scope: '', sessionId: sessionId }, atA(), 0).ship();

    const restored = await machineB.restore({ scope: '', sessionId: sessionId }, atB());
    expect(restored).toEqual({
      kind: 'found',
      path: join(dirB, 'projects', '-work-repo', `${sessionId}.jsonl`),
      stored: statSync(path).size,
    });
    expect(readFileSync(pathOf(restored))).toEqual(readFileSync(path));
  });

  it('never splices two runs that continue one session: the later to ship stops, the stored one stays whole', async () => {
    const ref = { scope: '', sessionId: randomUUID() };
    writeTranscript(dirA, ref.sessionId, userLine('earlier'));
    await machineA.shipper(ref, atA(), 0).ship();
    // Two runs restore it, then each writes its own turn; the longer turn ships second.
    const onA = await machineA.restore(ref, {
      ...atA(),
      configDir: mkdtempSync(join(tmpdir(), 'claude-a2-')),
    });
    const onB = await machineB.restore(ref, atB());
    const first = onA.kind === 'found' ? onA : expect.unreachable();
    const second = onB.kind === 'found' ? onB : expect.unreachable();
    appendFileSync(first.path, assistantLine('from A'));
    appendFileSync(second.path, assistantLine('a longer line, from B'));
    const shipperA = machineA.shipper(
      ref,
      { ...atA(), configDir: dirname(dirname(dirname(first.path))) },
      first.stored,
    );
    const shipperB = machineB.shipper(ref, atB(), second.stored);
    await shipperA.ship();
    await shipperB.ship();

    expect(shipperB.stopped).toBe('conflict');
    const again = await machineA.restore(ref, {
      ...atA(),
      configDir: mkdtempSync(join(tmpdir(), 'claude-a3-')),
    });
    expect(readFileSync(pathOf(again), 'utf8')).toBe(readFileSync(first.path, 'utf8'));
  });

  it("stores nothing shipped under a job lock that holds another attempt's token now", async () => {
    const ref = { scope: '', sessionId: randomUUID() };
    writeTranscript(dirA, ref.sessionId, userLine('earlier'));
    const lockKey = `${address.prefix}:${address.queueName}:job-1:lock`;
    await redis.set(lockKey, 'token-of-attempt-2');
    const late = machineA.shipper(ref, atA(), 0, { lockKey, token: 'token-of-attempt-1' });
    await late.ship();
    expect(late.stopped).toBe('fenced');
    expect(await machineB.restore(ref, atB())).toEqual({ kind: 'missing' });

    const own = machineA.shipper(ref, atA(), 0, { lockKey, token: 'token-of-attempt-2' });
    await own.ship();
    expect(own.stopped).toBeNull();
    expect((await machineB.restore(ref, atB())).kind).toBe('found');
  });

  it('lets a transcript grown past SESSION_MAX_BYTES drop the stored one only under its lock, and only where it holds no more than that run shipped', async () => {
    const small = new SessionStore(new RedisTranscripts(redis, address, 3600), 1024);
    const ref = { scope: '', sessionId: randomUUID() };
    writeTranscript(dirB, ref.sessionId, userLine('the next attempt, saved'));
    await machineB.shipper(ref, atB(), 0).ship();
    const saved = await machineA.restore(ref, {
      ...atA(),
      configDir: mkdtempSync(join(tmpdir(), 'claude-saved-')),
    });
    writeTranscript(dirA, ref.sessionId, userLine('x'.repeat(2048)));

    // An attempt whose job moved on, and a run behind the one that saved more: neither drops it.
    const lockKey = `${address.prefix}:${address.queueName}:job-1:lock`;
    await redis.set(lockKey, 'token-of-attempt-2');
    const late = small.shipper(ref, atA(), 0, { lockKey, token: 'token-of-attempt-1' });
    await late.ship();
    expect(late.stopped).toBe('fenced');
    const behind = small.shipper(ref, atA(), 0);
    await behind.ship();
    expect(behind.stopped).toBe('conflict');
    expect(await machineB.restore(ref, atB())).toMatchObject({ kind: 'found' });
    expect(saved.kind).toBe('found');

    // The run that saved it may give it up.
    writeTranscript(
      dirB,
      ref.sessionId,
      userLine('the next attempt, saved') + userLine('y'.repeat(2048)),
    );
    const own = small.shipper(ref, atB(), userLine('the next attempt, saved').length);
    await own.ship();
    expect(own.stopped).toBe('oversized');
    expect(await machineA.restore(ref, atA())).toMatchObject({ kind: 'oversized' });
  });

  it('never splices two runs that ship one session at once into a local store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claude-local-'));
    const local = new SessionStore(new LocalTranscripts(dir, 3600), 1024 * 1024);
    const ref = { scope: '', sessionId: randomUUID() };
    writeTranscript(dirA, ref.sessionId, userLine('run a'));
    writeTranscript(dirB, ref.sessionId, userLine('run b, a longer line'));
    const a = local.shipper(ref, atA(), 0);
    const b = local.shipper(ref, atB(), 0);
    await Promise.all([a.ship(), b.ship()]);

    expect([a.stopped, b.stopped].sort()).toEqual(['conflict', null]);
    const kept = readdirSync(dir).map((name) => readFileSync(join(dir, name), 'utf8'));
    expect(kept).toEqual([
      a.stopped === null ? userLine('run a') : userLine('run b, a longer line'),
    ]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a local transcript that is as long as the stored one, and saves one that grew', async () => {
    const sessionId = randomUUID();
    const path = writeTranscript(dirA, sessionId, userLine('one'));
    await machineA.shipper({ scope: '', sessionId: sessionId }, atA(), 0).ship();
    appendFileSync(path, assistantLine('two'));
    const local = await machineA.restore({ scope: '', sessionId: sessionId }, atA());
    expect(local).toEqual({ kind: 'found', path, stored: userLine('one').length });
    expect(readFileSync(path, 'utf8')).toContain('two');

    // The next run's shipper starts from what the store held: it sends the rest.
    await machineA
      .shipper({ scope: '', sessionId: sessionId }, atA(), userLine('one').length)
      .ship();
    const onB = await machineB.restore({ scope: '', sessionId: sessionId }, atB());
    expect(readFileSync(pathOf(onB), 'utf8')).toContain('two');
  });

  it("ships only the run's own transcript: not a link to another file, nor a file of another uid", async () => {
    const ref = { scope: '', sessionId: randomUUID() };
    const stored = () => new RedisTranscripts(redis, address, 3600).stored(ref);
    const elsewhere = join(dirA, 'elsewhere.jsonl');
    writeFileSync(elsewhere, userLine('not the run’s'));
    const transcript = join(dirA, 'projects', '-work-repo', `${ref.sessionId}.jsonl`);
    mkdirSync(join(dirA, 'projects', '-work-repo'), { recursive: true });
    symlinkSync(elsewhere, transcript);
    const uid = process.getuid?.() ?? 0;
    await machineA.shipper(ref, { ...atA(), owner: uid }, 0).ship();
    expect(await stored()).toEqual({ bytes: 0, oversized: false });

    rmSync(transcript);
    writeTranscript(dirA, ref.sessionId, userLine('fix the bug'));
    await machineA.shipper(ref, { ...atA(), owner: uid + 1 }, 0).ship();
    expect(await stored()).toEqual({ bytes: 0, oversized: false });

    await machineA.shipper(ref, { ...atA(), owner: uid }, 0).ship();
    expect(await stored()).toMatchObject({ bytes: statSync(transcript).size, oversized: false });
  });

  it.each([
    ['Redis', () => new RedisTranscripts(redis, address, 3600)],
    [
      'a local directory',
      () => new LocalTranscripts(mkdtempSync(join(tmpdir(), 'claude-l-')), 3600),
    ],
  ])(
    'restores, from %s, what the session held when the restore looked, while another run appends to it',
    async (_where, makeSink: () => TranscriptSink) => {
      const sink = makeSink();
      const ref = { scope: '', sessionId: randomUUID() };
      writeTranscript(dirA, ref.sessionId, userLine('one'));
      await new SessionStore(sink, 1024 * 1024).shipper(ref, atA(), 0).ship();
      // Another job of the session ships a turn right after this restore read the size.
      const racing: TranscriptSink = {
        stored: async (at) => {
          const held = await sink.stored(at);
          expect(await sink.append(at, held.bytes, Buffer.from(userLine('two')))).toBe('ok');
          return held;
        },
        append: (...args) => sink.append(...args),
        markOversized: (...args) => sink.markOversized(...args),
        copyTo: (...args) => sink.copyTo(...args),
      };
      const restored = await new SessionStore(racing, 1024 * 1024).restore(ref, atB());
      expect(readFileSync(pathOf(restored), 'utf8')).toBe(userLine('one'));
      // The next restore gets the turn it appended.
      const later = await new SessionStore(sink, 1024 * 1024).restore(ref, atB());
      expect(readFileSync(pathOf(later), 'utf8')).toBe(userLine('one') + userLine('two'));
    },
  );

  it('restores a session that a worker of an earlier version appended to since', async () => {
    const ref = { scope: '', sessionId: randomUUID() };
    writeTranscript(dirA, ref.sessionId, userLine('one'));
    await machineA.shipper(ref, atA(), 0).ship();
    // Such a worker appends the data and the byte count alone.
    const meta = sessionKey(address, ref.sessionId, '');
    await redis.append(`${meta}:data`, gzipSync(userLine('two')));
    await redis.hset(meta, 'bytes', String(userLine('one').length + userLine('two').length));

    const restored = await machineB.restore(ref, atB());
    expect(readFileSync(pathOf(restored), 'utf8')).toBe(userLine('one') + userLine('two'));
  });

  it('finds nothing for a session no machine recorded', async () => {
    expect(await machineB.restore({ scope: '', sessionId: randomUUID() }, atB())).toEqual({
      kind: 'missing',
    });
  });

  describe('planning an attempt', () => {
    it('fixes a new session id before the first attempt', async () => {
      const plan = await planAttempt({ prompt: 'fix the bug' }, null, machineA, atA());
      expect(plan.session.mode).toBe('new');
      expect(plan.sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(plan).toMatchObject({ resumed: false, prompt: 'fix the bug', promptKind: 'original' });
    });

    it('starts that same session afresh when the first attempt died before the CLI recorded anything', async () => {
      const sessionId = randomUUID();
      const plan = await planAttempt(
        { prompt: 'fix the bug' },
        priorState(sessionId),
        machineB,
        atB(),
      );
      expect(plan.session).toEqual({ mode: 'new', sessionId });
      expect(plan).toMatchObject({ prompt: 'fix the bug', promptKind: 'original', resumed: false });
    });

    it('resumes on another machine with a note to continue, not the prompt again, when the session holds it', async () => {
      const sessionId = randomUUID();
      writeTranscript(dirA, sessionId, userLine('fix the bug') + assistantLine('on it'));
      await machineA.shipper({ scope: '', sessionId: sessionId }, atA(), 0).ship();

      const plan = await planAttempt(
        { prompt: 'fix the bug' },
        priorState(sessionId),
        machineB,
        atB(),
      );
      expect(plan.session).toEqual({ mode: 'resume', sessionId });
      expect(plan.promptKind).toBe('continue');
      expect(plan.prompt).toMatch(/^The previous attempt at this task was interrupted/);
      expect(plan.resumed).toBe(true);
    });

    it('resumes with the original prompt when the session does not hold it yet', async () => {
      const sessionId = randomUUID();
      writeTranscript(dirA, sessionId, assistantLine('nothing asked yet'));
      const plan = await planAttempt(
        { prompt: 'fix the bug' },
        priorState(sessionId),
        machineA,
        atA(),
      );
      expect(plan.session).toEqual({ mode: 'resume', sessionId });
      expect(plan).toMatchObject({ prompt: 'fix the bug', promptKind: 'original' });
    });

    it('looks for the prompt only in what this job added to a session it resumed', async () => {
      const sessionId = randomUUID();
      // An earlier job of the same session already asked the very same thing.
      const path = writeTranscript(
        dirA,
        sessionId,
        userLine('run the tests') + assistantLine('done'),
      );
      const first = await planAttempt(
        { prompt: 'run the tests', resumeSessionId: sessionId },
        null,
        machineA,
        atA(),
      );
      expect(first).toMatchObject({
        session: { mode: 'resume', sessionId },
        promptKind: 'original',
        transcriptBaseline: statSync(path).size,
      });

      // This job's first attempt died before the CLI wrote its prompt: say it again.
      const retry = await planAttempt(
        { prompt: 'run the tests', resumeSessionId: sessionId },
        priorState(sessionId, first.transcriptBaseline),
        machineA,
        atA(),
      );
      expect(retry.promptKind).toBe('original');

      // Once it is there, a retry continues instead.
      appendFileSync(path, userLine('run the tests'));
      const later = await planAttempt(
        { prompt: 'run the tests', resumeSessionId: sessionId },
        priorState(sessionId, first.transcriptBaseline),
        machineA,
        atA(),
      );
      expect(later.promptKind).toBe('continue');
    });

    it('leaves sessions to the CLI when portable sessions are off', async () => {
      expect(await planAttempt({ prompt: 'x' }, null, null, atA())).toMatchObject({
        session: { mode: 'none' },
        sessionId: null,
      });
      const sessionId = randomUUID();
      expect(
        await planAttempt({ prompt: 'x', resumeSessionId: sessionId }, null, null, atA()),
      ).toMatchObject({
        session: { mode: 'resume', sessionId },
        resumed: true,
      });
    });
  });
});

describe('transcripts kept on the worker (SESSION_STORE=off)', () => {
  it('go once unchanged for SESSION_TTL_SECONDS, as Redis expires its keys, and the others stay', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'claudebox-sessions-'));
    const sink = new LocalTranscripts(dir, 3600);
    const old = { scope: '', sessionId: randomUUID() };
    const recent = { scope: '', sessionId: randomUUID() };
    await sink.append(old, 0, Buffer.from(userLine('last week')));
    await sink.append(recent, 0, Buffer.from(userLine('just now')));
    const [oldFile] = readdirSync(dir).filter((name) => name.includes(old.sessionId));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
    utimesSync(join(dir, oldFile ?? ''), twoHoursAgo, twoHoursAgo);

    // A new sink, as a worker that starts: the first look at a session sweeps.
    const later = new LocalTranscripts(dir, 3600);
    expect(await later.stored(recent)).toEqual({
      bytes: userLine('just now').length,
      oversized: false,
    });
    expect(await later.stored(old)).toEqual({ bytes: 0, oversized: false });
    expect(readdirSync(dir)).toHaveLength(1);
    rmSync(dir, { recursive: true, force: true });
  });
});
