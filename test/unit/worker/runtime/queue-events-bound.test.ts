import { describe, expect, it } from 'vitest';
import {
  largestQueueEventBytes,
  queueEventsMaxLen,
} from '../../../../src/worker/runtime/queue-events-bound.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe("the cap of BullMQ's event stream", () => {
  it('fits QUEUE_EVENTS_MAX_BYTES of the largest entries a job writes', () => {
    expect(largestQueueEventBytes(64 * KiB)).toBe(384 * KiB);
    expect(queueEventsMaxLen(64 * MiB, 64 * KiB)).toBe(170);
    expect(queueEventsMaxLen(64 * MiB, 64 * KiB) * largestQueueEventBytes(64 * KiB)).toBeLessThan(
      64 * MiB,
    );
  });

  it('keeps at least one entry when the budget is smaller than one result', () => {
    expect(queueEventsMaxLen(MiB, 4 * MiB)).toBe(1);
  });
});
