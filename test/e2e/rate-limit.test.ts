import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ExecuteEvent, ExecuteResult } from '../../src/contract/index.js';
import { startRealCliWorker, type RealCliWorker } from '../support/real-cli-worker.js';
import { collectEvents } from '../support/worker.js';

const redisUrl = inject('redisUrl');

type Terminal = Extract<ExecuteEvent, { type: 'completed' | 'failed' }>;

const terminals = (events: ExecuteEvent[]): Terminal[] =>
  events.filter((e): e is Terminal => e.type === 'completed' || e.type === 'failed');

const startOf = (events: ExecuteEvent[], attempt: number): ExecuteEvent | undefined =>
  events.find((e) => e.type === 'started' && e.attempt === attempt);

const at = (event: { timestamp: string } | undefined): number =>
  Date.parse(event?.timestamp ?? 'none');

/**
 * The CLI retries an API call once within the run (CLAUDE_CODE_MAX_RETRIES=1), which is how it
 * reports the API's retry-after (`api_retry` lines); the stand-in answers the error to both
 * tries (`times=2`), so the run ends on it and the worker's delayed retry is what follows.
 */
describe('API rate limits and overload, through the real claude CLI', () => {
  let stack: RealCliWorker;

  beforeAll(async () => {
    stack = await startRealCliWorker(redisUrl, {
      claudeEnv: { CLAUDE_CODE_MAX_RETRIES: '1' },
      workerEnv: { MAX_RATE_LIMIT_DELAYS: '2' },
    });
  });

  afterAll(async () => {
    expect(await stack.close()).toEqual([]);
  });

  async function run(
    prompt: string,
    attempts: number,
  ): Promise<{ result: ExecuteResult; events: ExecuteEvent[] }> {
    const { client } = stack;
    const jobId = await client.enqueue({ prompt }, { attempts });
    const result = await client.result(jobId, { timeoutMs: 90_000 });
    return { result, events: await collectEvents(client.events(jobId)) };
  }

  it('retries a 429 after the retry-after the API gave, without spending an attempt', async () => {
    const { result, events } = await run(
      'Hi.\nstand-in: http 429 retry-after=3 times=2\nstand-in: say After the wait.',
      1,
    );

    expect(result).toMatchObject({ success: true, attempt: 2, finalOutput: 'After the wait.' });
    const [limited, completed] = terminals(events);
    expect(limited?.type).toBe('failed');
    expect(limited?.data).toMatchObject({
      failure: 'rate-limited',
      apiErrorStatus: 429,
      retrying: true,
    });
    expect(limited?.data.error).toContain('429');
    expect(completed?.type).toBe('completed');
    // The CLI reports the retry-after with a jitter of up to a quarter on top.
    const promised = Date.parse(limited?.data.retryAt ?? 'none') - at(limited);
    expect(promised).toBeGreaterThanOrEqual(2_900);
    expect(promised).toBeLessThan(5_000);
    const waited = at(startOf(events, 2)) - at(limited);
    expect(waited).toBeGreaterThanOrEqual(2_500);
    expect(waited).toBeLessThan(30_000);
  });

  it('retries a 529 later too, but spends an attempt on it', async () => {
    const prompt = 'Hi.\nstand-in: http 529 retry-after=1 times=2\nstand-in: say Served.';
    const twice = await run(prompt, 2);
    expect(twice.result).toMatchObject({ success: true, attempt: 2, finalOutput: 'Served.' });
    expect(terminals(twice.events)[0]?.data).toMatchObject({
      failure: 'rate-limited',
      apiErrorStatus: 529,
      retrying: true,
    });

    const once = await run(prompt.replace('Served.', 'Never served.'), 1);
    expect(once.result).toMatchObject({
      success: false,
      failure: 'rate-limited',
      apiErrorStatus: 529,
      attempt: 1,
      retrying: false,
      retryAt: null,
    });
  });

  it('fails the job for good once it was delayed MAX_RATE_LIMIT_DELAYS times', async () => {
    const { result, events } = await run('Hi.\nstand-in: http 429 retry-after=1', 1);

    expect(result).toMatchObject({
      success: false,
      failure: 'rate-limited',
      attempt: 3,
      retrying: false,
      retryAt: null,
    });
    expect(terminals(events).map((e) => e.data.retrying)).toEqual([true, true, false]);
  });
});
