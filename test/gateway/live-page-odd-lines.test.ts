import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type ClaudeboxClient } from '../../src/client/index.js';
import { launchChromium } from '../support/browser.js';
import { startTestGateway, type TestGateway } from '../support/sse.js';
import {
  collectEvents,
  fixture,
  startTestWorker,
  uniqueQueueName,
  type TestWorker,
} from '../support/worker.js';

const redisUrl = inject('redisUrl');
const SECRET = 'the-odd-lines-secret-of-32-characters-or-more';

describe('the live page, in headless Chromium, given lines of shapes the CLI does not print', () => {
  let worker: TestWorker;
  let client: ClaudeboxClient;
  let gateway: TestGateway;
  let browser: Browser;

  beforeAll(async () => {
    const queueName = uniqueQueueName();
    worker = await startTestWorker({
      redisUrl,
      queueName,
      claudeBin: fixture('claude-odd-shapes.mjs'),
    });
    client = createClient({ url: redisUrl, queueName, readTokenSecret: SECRET });
    gateway = await startTestGateway({ url: redisUrl, queueName, secret: SECRET });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser.close();
    await gateway.close();
    await worker.worker.shutdown(0);
    await client.close();
  });

  it('shows every event, each once, and no script error', async () => {
    const jobId = await client.enqueue({ prompt: 'odd lines' });
    const result = await client.result(jobId, { timeoutMs: 30_000 });
    expect(result.success).toBe(true);
    const replay = await collectEvents(client.events(jobId, { follow: false }));

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${gateway.url}/?job=${jobId}&token=${client.readToken(jobId, 300)}`);
    await page.locator('#result').waitFor({ state: 'visible', timeout: 30_000 });

    const seqs = await page.$$eval('#events > li', (items) =>
      items.map((item) => Number(item.dataset.seq)),
    );
    expect(seqs).toEqual(replay.map((event) => event.seq));
    const log = await page.locator('#events').innerText();
    expect(log).toContain('still here after the odd lines');
    expect(log).toContain('["a","list"]');
    expect(errors).toEqual([]);
    await page.close();
  });
});
