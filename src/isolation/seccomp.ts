import { endianness } from 'node:os';

/**
 * The seccomp program a sandboxed run gets (bwrap's --seccomp): it refuses the kernel's key
 * management calls, `add_key`, `request_key` and `keyctl`, with EPERM, as Docker's default
 * profile does, and allows everything else. Keys are not namespaced: a run would otherwise share
 * the worker's session keyring (a systemd service has one of its own), and a uid's own keyrings
 * outlive its run, for the next run of that uid to read.
 *
 * A classic BPF program, as the kernel takes it: 8-byte instructions in the host's byte order.
 * A call of an architecture it does not name (see KEY_CALLS) is allowed.
 */

const LOAD_WORD = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JUMP_IF_EQUAL = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RETURN = 0x06; // BPF_RET | BPF_K

/** Offsets in struct seccomp_data. */
const SYSCALL_NUMBER = 0;
const ARCH = 4;

const ALLOW = 0x7fff_0000; // SECCOMP_RET_ALLOW
const REFUSE = 0x0005_0000 | 1; // SECCOMP_RET_ERRNO | EPERM

/** x86-64's syscalls through the x32 ABI carry this bit. */
const X32 = 0x4000_0000;

/** add_key, request_key and keyctl, by the architecture seccomp reports (AUDIT_ARCH_*). */
const KEY_CALLS: readonly (readonly [arch: number, numbers: readonly number[]])[] = [
  [0xc000_003e, [248, 249, 250, X32 + 248, X32 + 249, X32 + 250]], // x86-64 (and x32)
  [0x4000_0003, [286, 287, 288]], // i386, on an x86-64 kernel too
  [0xc000_00b7, [217, 218, 219]], // aarch64
  [0x4000_0028, [309, 310, 311]], // 32-bit ARM, on an aarch64 kernel too
];

interface Instruction {
  readonly code: number;
  readonly k: number;
  /** Instructions to skip when the comparison holds, and when it does not. */
  readonly ifTrue?: number;
  readonly ifFalse?: number;
}

/**
 * For each architecture, a block the arch skips unless it is this one: load the number, compare
 * it with each call (to the refusal at the block's end), else allow. Any other arch is allowed.
 */
function program(): Instruction[] {
  const steps: Instruction[] = [];
  for (const [arch, numbers] of KEY_CALLS) {
    steps.push({ code: LOAD_WORD, k: ARCH });
    // Past the load, a comparison a call, the allow and the refusal.
    steps.push({ code: JUMP_IF_EQUAL, k: arch, ifFalse: numbers.length + 3 });
    steps.push({ code: LOAD_WORD, k: SYSCALL_NUMBER });
    numbers.forEach((number, at) => {
      // Past the comparisons left and the allow.
      steps.push({ code: JUMP_IF_EQUAL, k: number, ifTrue: numbers.length - at });
    });
    steps.push({ code: RETURN, k: ALLOW });
    steps.push({ code: RETURN, k: REFUSE });
  }
  steps.push({ code: RETURN, k: ALLOW });
  return steps;
}

/** The program, as bwrap reads it from a descriptor. */
export const KEYRING_FILTER: Buffer = encode(program());

function encode(steps: readonly Instruction[]): Buffer {
  const bytes = Buffer.alloc(steps.length * 8);
  const little = endianness() === 'LE';
  steps.forEach(({ code, k, ifTrue = 0, ifFalse = 0 }, at) => {
    if (little) bytes.writeUInt16LE(code, at * 8);
    else bytes.writeUInt16BE(code, at * 8);
    bytes.writeUInt8(ifTrue, at * 8 + 2);
    bytes.writeUInt8(ifFalse, at * 8 + 3);
    if (little) bytes.writeUInt32LE(k >>> 0, at * 8 + 4);
    else bytes.writeUInt32BE(k >>> 0, at * 8 + 4);
  });
  return bytes;
}
