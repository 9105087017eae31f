import { describe, expect, it } from 'vitest';
import { capabilityWarnings } from '../../../src/isolation/worker-capabilities.js';

const status = (effective: string): string =>
  `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${effective}\nCapBnd:\t${effective}\n`;

describe('the warnings about capabilities the worker lacks', () => {
  it('say a run can take its OOM score adjustment back where the worker lacks CAP_SYS_RESOURCE', () => {
    // Root on a host without CAP_SYS_RESOURCE; Docker's default capabilities.
    for (const effective of ['000001fffeffffff', '00000000a80425fb']) {
      expect(capabilityWarnings(status(effective))).toEqual([
        expect.stringMatching(
          /^the worker lacks CAP_SYS_RESOURCE: a run's processes can lower their OOM score adjustment/,
        ),
      ]);
    }
  });

  it('say a run keeps the worker’s bounding set where the worker lacks CAP_SETPCAP', () => {
    // A container that dropped every capability and added back only the ones it names.
    expect(capabilityWarnings(status('00000000010000e1'))).toEqual([
      expect.stringMatching(
        /^the worker lacks CAP_SETPCAP: setpriv cannot empty a run's capability bounding set/,
      ),
    ]);
  });

  it('are none where the worker has both, or its capabilities cannot be read', () => {
    expect(capabilityWarnings(status('000001ffffffffff'))).toEqual([]);
    expect(capabilityWarnings(status('0000000001000100'))).toEqual([]);
    expect(capabilityWarnings('')).toEqual([]);
  });
});
