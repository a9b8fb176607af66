import { createHash, createHmac } from 'node:crypto';
import { hashAlgorithm } from '../hash-algorithms';

/**
 * The counter-mode loop both TPM KDFs share: block i (i = 1, 2, …) = PRF(u32(i) ‖ …), blocks
 * concatenated and truncated to ⌈bits/8⌉ bytes. When `bits` is not a multiple of 8 the unused high
 * bits of the first (most significant) octet are cleared, as Part 1 §11.4.10.2 requires.
 */
function counterMode(bits: number, block: (counter: Buffer) => Buffer): Buffer {
  // Zero bits is legal and yields nothing (go-tpm's vectors include it).
  if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) {
    throw new RangeError(`KDF output of ${bits} bits is not a 32-bit count`);
  }
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  let produced = 0;
  for (let i = 1; produced < bytes; i += 1) {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(i);
    const out = block(counter);
    blocks.push(out);
    produced += out.length;
  }
  const result = Buffer.concat(blocks).subarray(0, bytes);
  if (bits % 8 !== 0) {
    result[0] = result[0]! & ((1 << (bits % 8)) - 1);
  }
  return Buffer.from(result);
}

/**
 * A KDF label as the TPM hashes it: the string's octets and its terminating NUL (Part 1 §11.4.10.1:
 * "if Label is a string, the terminating null octet is included"). Callers pass the bare text
 * ("STORAGE", "IDENTITY"), as go-tpm's vectors do.
 */
export function kdfLabel(label: string): Buffer {
  return Buffer.concat([Buffer.from(label, 'latin1'), Buffer.alloc(1)]);
}

/**
 * Part 1 §11.4.10.2 KDFa (SP 800-108 counter mode with HMAC):
 * block_i = HMAC_hashAlg(key, u32(i) ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ u32(bits)).
 */
export function KDFa(
  hashAlg: number,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Buffer {
  const node = hashAlgorithm(hashAlg).node;
  const labelBytes = kdfLabel(label);
  const bitsField = Buffer.alloc(4);
  bitsField.writeUInt32BE(bits >>> 0);
  return counterMode(bits, (counter) =>
    createHmac(node, key).update(counter).update(labelBytes).update(contextU).update(contextV).update(bitsField).digest(),
  );
}

/**
 * Part 1 §11.4.10.3 KDFe (SP 800-56A concatenation KDF), used with ECDH: Z is the x-coordinate of
 * the shared point, partyUInfo and partyVInfo the x-coordinates of the ephemeral and static keys:
 * block_i = H_hashAlg(u32(i) ‖ Z ‖ label ‖ 0x00 ‖ partyUInfo ‖ partyVInfo). Unlike KDFa, no bits field.
 */
export function KDFe(
  hashAlg: number,
  Z: Uint8Array,
  label: string,
  partyUInfo: Uint8Array,
  partyVInfo: Uint8Array,
  bits: number,
): Buffer {
  const node = hashAlgorithm(hashAlg).node;
  const labelBytes = kdfLabel(label);
  return counterMode(bits, (counter) =>
    createHash(node).update(counter).update(Z).update(labelBytes).update(partyUInfo).update(partyVInfo).digest(),
  );
}
