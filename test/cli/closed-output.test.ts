import { describe, expect, inject, it } from 'vitest';
import { uniqueQueueName } from '../support/worker.js';
import { spawnCli } from './support.js';

const redisUrl = inject('redisUrl');

describe('claudebox whose reader went away', () => {
  it('exits with the code of what happened when its stderr is closed (2>&1 | head)', async () => {
    const cli = spawnCli(['result', 'no-such-job'], {
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
    });
    // Its message that the job does not exist goes nowhere.
    cli.child.stderr?.destroy();
    expect(await cli.exited).toBe(3);
  });

  it('exits with the code of what happened when its stdout is closed (| head -1)', async () => {
    const cli = spawnCli(['run', 'hello'], {
      REDIS_URL: redisUrl,
      QUEUE_NAME: uniqueQueueName(),
    });
    cli.child.stdout?.destroy();
    expect(await cli.exited).toBe(0);
  });
});
