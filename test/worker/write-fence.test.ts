import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { readPatch, storePatch } from '../../src/redis/patches.js';
import { lockKeyOf } from '../../src/redis/write-fence.js';
import { Workspaces, type Checkout } from '../../src/workspace/index.js';
import type { JobContext } from '../../src/worker/attempt/context.js';
import { WorkspaceCheckpoints } from '../../src/worker/attempt/workspace-step.js';
import { oneCommitRepository } from '../support/git.js';
import { uniqueQueueName, waitFor } from '../support/worker.js';

const redis = new Redis(inject('redisUrl'));
afterAll(async () => {
  await redis.quit();
});

const change = (text: string) => ({
  base: 'a'.repeat(40),
  bytes: text.length,
  patch: Buffer.from(text),
  summary: () => 'summary',
});
const limits = { maxBytes: 1024, ttlSeconds: 60 };

describe("a job's workspace patch, written by an attempt whose lock may have lapsed", () => {
  let address: { prefix: string; queueName: string };
  let lockKey: string;

  beforeEach(() => {
    address = { prefix: 'bull', queueName: uniqueQueueName() };
    lockKey = lockKeyOf(`${address.prefix}:${address.queueName}:job-1`);
  });

  it("is refused once the job's lock holds another attempt's token, and the next attempt's patch stays", async () => {
    await redis.set(lockKey, 'token-of-attempt-2');
    const own = { lockKey, token: 'token-of-attempt-2' };
    expect(await storePatch(redis, address, 'job-1', change('second'), limits, own)).toBe('kept');

    const late = { lockKey, token: 'token-of-attempt-1' };
    expect(await storePatch(redis, address, 'job-1', change('first'), limits, late)).toBe('fenced');
    expect((await readPatch(redis, address, 'job-1'))?.patch.toString()).toBe('second');
  });

  it('is refused once the lock is gone, and lands without a fence (no lock to check)', async () => {
    const fence = { lockKey, token: 'token-of-attempt-1' };
    expect(await storePatch(redis, address, 'job-1', change('late'), limits, fence)).toBe('fenced');
    expect(await readPatch(redis, address, 'job-1')).toBeNull();

    expect(await storePatch(redis, address, 'job-1', change('free'), limits)).toBe('kept');
    expect((await readPatch(redis, address, 'job-1'))?.patch.toString()).toBe('free');
  });

  it('is kept as a summary, under the fence, when it is over the cap', async () => {
    await redis.set(lockKey, 'token');
    const fence = { lockKey, token: 'token' };
    const big = change('x'.repeat(2000));
    expect(await storePatch(redis, address, 'job-1', big, limits, fence)).toBe('truncated');
    const stored = await readPatch(redis, address, 'job-1');
    expect(stored).toMatchObject({ truncated: true, bytes: 2000 });
    expect(stored?.patch.toString()).toBe('summary');
  });
});

describe('checkpoints of a run whose job is no longer its own', () => {
  let root: string;
  let checkout: Checkout;
  let looks: number;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'claudebox-fence-'));
    const workspaces = await Workspaces.open({
      dir: join(root, 'workspaces'),
      runMayBeIn: () => Promise.resolve(false),
    });
    checkout = await workspaces.checkout(
      'job-1',
      { source: oneCommitRepository(root), ref: 'main' },
      null,
    );
    looks = 0;
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('are stored while the lock holds the token, and stop for good, storing nothing, once it does not', async () => {
    const address = { prefix: 'bull', queueName: uniqueQueueName() };
    const lockKey = lockKeyOf(`${address.prefix}:${address.queueName}:job-1`);
    await redis.set(lockKey, 'token-of-attempt-1');
    let stored = 0;
    const context = {
      redis,
      address,
      settings: { patchMaxBytes: 1024 * 1024 },
      now: () => Date.now(),
      onCheckpoint: () => (stored += 1),
    } as unknown as JobContext;
    // Counts git's looks at the checkout: each runs with the run stopped.
    const hold = <T>(step: () => Promise<T>): Promise<T | null> => {
      looks += 1;
      return step();
    };
    const logged: string[] = [];
    const checkpoints = new WorkspaceCheckpoints(
      context,
      'job-1',
      checkout,
      60,
      pino({ level: 'info' }, { write: (line: string) => logged.push(line) }),
      hold,
      { lockKey, token: 'token-of-attempt-1' },
    );

    writeFileSync(join(checkout.dir, 'one.txt'), 'one\n');
    checkpoints.request();
    await waitFor('the first checkpoint', () => (stored === 1 ? true : undefined));
    expect((await readPatch(redis, address, 'job-1'))?.patch.toString()).toContain('one.txt');

    // Another worker took the job over, and its attempt stored the patch it starts from.
    await redis.set(lockKey, 'token-of-attempt-2');
    await redis.hset(`${address.prefix}:${address.queueName}:patch:job-1`, 'patch', 'theirs');
    writeFileSync(join(checkout.dir, 'two.txt'), 'two\n');
    checkpoints.request();
    // A tool finishes while that checkpoint is taken: it would ask for one more.
    checkpoints.request();
    await waitFor('the refused checkpoint', () =>
      logged.find((line) => line.includes('no more checkpoints')),
    );
    await checkpoints.close();

    expect(stored).toBe(1);
    expect(looks).toBe(2);
    expect((await readPatch(redis, address, 'job-1'))?.patch.toString()).toBe('theirs');
  });
});
