import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import type { ExecuteEvent } from '../../src/contract/index.js';
import { startStandIn, type StandIn } from '../../tools/stand-in/index.js';
import { launchChromium } from '../support/browser.js';
import { findRealClaude, privateClaudeEnv, type PrivateClaudeEnv } from '../support/real-claude.js';
import { startTestGateway, type TestGateway } from '../support/sse.js';
import {
  collectEvents,
  createQueue,
  startTestWorker,
  uniqueQueueName,
  waitFor,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const OPERATOR = 'operator-token-for-the-page';
const SECRET = 'the-page-tests-secret-of-32-characters-or-more';

/** Three Bash calls a second or so apart, then an answer: a run long enough to watch. */
const PROMPT = [
  'Count to three, slowly.',
  'stand-in: bash sleep 1 && echo one',
  'stand-in: bash sleep 1 && echo two',
  'stand-in: bash sleep 1 && echo three',
  'stand-in: say Counted: {{result}}',
].join('\n');

describe('the live page, in headless Chromium, watching the real CLI', () => {
  let standIn: StandIn;
  let claude: PrivateClaudeEnv;
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let browser: Browser;
  let queueName: string;

  beforeAll(async () => {
    standIn = await startStandIn();
    claude = privateClaudeEnv({ baseUrl: standIn.url });
    queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: findRealClaude(),
      env: { ...claude.env, KILL_GRACE_SECONDS: '2' },
    });
    client = createClient({ url: redisUrl, queueName, readTokenSecret: SECRET });
    gateway = await startTestGateway({
      url: redisUrl,
      queueName,
      secret: SECRET,
      operatorToken: OPERATOR,
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser.close();
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
    await standIn.close();
    expect(await claude.dispose()).toEqual([]);
  });

  const seqsOnPage = (page: Page): Promise<number[]> =>
    page.$$eval('#events > li', (items) => items.map((item) => Number(item.dataset.seq)));

  it('shows a run live, keeps every event exactly once across a reload, and ends with the result', async () => {
    const jobId = await client.enqueue({ prompt: PROMPT, allowedTools: ['Bash'] });
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/?job=${jobId}&token=${client.readToken(jobId, 300)}`);

    // The first tool call shows while the run is still going.
    await page.locator('#events > li.tool-call').first().waitFor({ timeout: 60_000 });
    expect(await page.locator('#result').isHidden()).toBe(true);
    expect(await client.result(jobId, { timeoutMs: 1 }).catch(() => 'running')).toBe('running');
    await page.reload();
    await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });

    const replay: ExecuteEvent[] = await collectEvents(client.events(jobId, { follow: false }));
    expect(await seqsOnPage(page)).toEqual(replay.map((event) => event.seq));
    const log = await page.locator('#events').innerText();
    expect(log).toContain('tool call: Bash');
    expect(log).toContain('"command": "sleep 1 && echo two"');
    expect(log).toContain('result of Bash');
    expect(log).toContain('Counted: three');
    expect(log).not.toContain('null');
    // A read token reads one job: no list, no operator sign-in.
    expect(await page.locator('#jobs-panel').isHidden()).toBe(true);
    expect(await page.locator('#operator-form').isHidden()).toBe(true);
    const result = await client.result(jobId);
    expect(await page.locator('#result-outcome').innerText()).toBe('success');
    expect(await page.locator('#result-cost').innerText()).toBe(`$${result.costUsd?.toFixed(4)}`);
    expect(await page.locator('#result-turns').innerText()).toBe(String(result.numTurns));
    expect(await page.locator('#result-duration').innerText()).toMatch(/^\d+\.\d s$/);

    // A finished run replays the same way.
    const later = await browser.newPage();
    await later.goto(`${gateway.url}/?job=${jobId}&token=${client.readToken(jobId, 300)}`);
    await later.locator('#result').waitFor({ state: 'visible' });
    expect(await later.locator('#events').innerText()).toBe(log);
    await page.close();
    await later.close();

    const queue = createQueue(redisUrl, queueName);
    try {
      const { logs } = await queue.getJobLogs(jobId);
      expect(logs.filter((line) => line === 'tool call: Bash')).toHaveLength(3);
    } finally {
      await queue.close();
    }
  });

  it('lets an operator pick a recent job from the list, by keyboard', async () => {
    const jobId = await client.enqueue({ prompt: 'stand-in: say Listed.' });
    await client.result(jobId, { timeoutMs: 60_000 });
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/`);
    await page.getByLabel('Operator token').fill(OPERATOR);
    await page.keyboard.press('Enter');
    const link = page.getByRole('link', { name: `Job ${jobId}` });
    await link.waitFor();
    await link.focus();
    await page.keyboard.press('Enter');

    await page.locator('#result').waitFor({ state: 'visible', timeout: 30_000 });
    expect(await page.locator('#events').innerText()).toContain('Listed.');
    expect(new URL(page.url()).searchParams.get('job')).toBe(jobId);
    await waitFor('the page to say the run is over', async () =>
      (await page.locator('#run-status').innerText()) === 'The run is over.' ? true : undefined,
    );
    await page.close();
  });
});
