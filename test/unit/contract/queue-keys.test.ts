import { QueueKeys } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { BULLMQ_QUEUE_KEYS } from '../../../src/contract/index.js';

describe("the names of BullMQ's own keys of a queue", () => {
  it('are those of the BullMQ installed, which no job id may take', () => {
    const names = Object.keys(new QueueKeys('bull').getKeys('q')).filter((name) => name !== '');
    expect([...BULLMQ_QUEUE_KEYS].sort()).toEqual(names.sort());
  });
});
