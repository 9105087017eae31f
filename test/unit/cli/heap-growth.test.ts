import { describe, expect, it } from 'vitest';
import { limitHeapGrowth } from '../../../src/cli/heap-growth.js';

describe("the worker's heap growth", () => {
  it('is limited when node was started without a setting of its own', () => {
    expect(limitHeapGrowth(['--enable-source-maps'])).toBe(true);
  });

  it("leaves an operator's own --heap-growing-percent in place, in either spelling", () => {
    expect(limitHeapGrowth(['--heap-growing-percent=300'])).toBe(false);
    expect(limitHeapGrowth(['--heap_growing_percent=20'])).toBe(false);
  });
});
