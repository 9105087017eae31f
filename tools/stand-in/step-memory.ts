import { createHash } from 'node:crypto';
import type { Step } from './script.js';

/**
 * What a stand-in remembers across requests: how often it answered each limited error step
 * (`http 429 times=2`) in each session. A failed call leaves nothing in the conversation, and a
 * retry resends the same one, so the conversation alone cannot tell that the error was answered.
 */
export class StepMemory {
  private readonly answered = new Map<string, number>();

  constructor(private readonly limit = 10_000) {}

  /** How often the step at `index` of `steps` was answered in `session`. */
  count(session: string | undefined, steps: readonly Step[], index: number): number {
    return this.answered.get(key(session, steps, index)) ?? 0;
  }

  record(session: string | undefined, steps: readonly Step[], index: number): void {
    const name = key(session, steps, index);
    const count = (this.answered.get(name) ?? 0) + 1;
    this.answered.delete(name);
    this.answered.set(name, count);
    // A stand-in left running for days must not grow without bound: the oldest go first.
    for (const oldest of this.answered.keys()) {
      if (this.answered.size <= this.limit) break;
      this.answered.delete(oldest);
    }
  }
}

function key(session: string | undefined, steps: readonly Step[], index: number): string {
  const script = createHash('sha256').update(JSON.stringify(steps)).digest('hex');
  return `${session ?? ''}:${script}:${index}`;
}
