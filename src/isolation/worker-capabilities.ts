import { readOrNothing } from '../common/paths.js';

/** Capabilities whose absence makes a run's isolation weaker, by their bit in a set. */
const WANTED = [
  {
    name: 'CAP_SYS_RESOURCE',
    bit: 24,
    // The floor a process may lower its OOM score adjustment to is set only by a writer that has
    // it: without it, what the launch gives a run, the run's processes can take back.
    without:
      "a run's processes can lower their OOM score adjustment back to the worker's, and where memory runs out the kernel then picks by size, the worker too",
  },
  {
    name: 'CAP_SETPCAP',
    bit: 8,
    // setpriv drops the bounding set with prctl, which needs it, and says nothing when it fails.
    without:
      "setpriv cannot empty a run's capability bounding set, which stays the worker's (no_new_privs still keeps a run from gaining capabilities by exec)",
  },
] as const;

/**
 * Why runs are isolated less than they could be, for a capability the worker lacks: one warning
 * each; none where the worker's capabilities cannot be read. `status` is the worker's
 * /proc/self/status.
 */
export function capabilityWarnings(
  status: string = readOrNothing('/proc/self/status') ?? '',
): string[] {
  const effective = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (effective === undefined) return [];
  const held = BigInt(`0x${effective}`);
  return WANTED.filter(({ bit }) => ((held >> BigInt(bit)) & 1n) === 0n).map(
    ({ name, without }) =>
      `the worker lacks ${name}: ${without} (add the capability; see docs/security.md)`,
  );
}
