import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/**
 * The JSON metadata of a LUKS2 device read from its header directly, for boot unlock: a cryptsetup
 * process costs more than the rest of the unlock's own work (docs/decisions.md "Boot unlock,
 * fast"). LUKS2 On-Disk Format (cryptsetup's docs/on-disk-format-luks2.pdf), §2-3: two copies of
 * the header, each a 4096-byte binary header followed by the JSON area, `hdr_size` bytes in all;
 * the primary at offset 0, the secondary at `hdr_size`.
 *
 * Binary header (big-endian): magic[6] "LUKS\xba\xbe" (secondary "SKUL\xba\xbe") ‖ version u16 = 2 ‖
 * hdr_size u64 ‖ seqid u64 ‖ label[48] ‖ checksum_alg[32] ‖ salt[64] ‖ uuid[40] ‖ subsystem[48] ‖
 * hdr_offset u64 ‖ padding[184] ‖ csum[64] ‖ padding[3584]. csum is checksum_alg over the whole
 * `hdr_size` bytes with the csum field zeroed; the JSON area is NUL-terminated text.
 *
 * Only the easy case is decided here: both copies present, checksums correct, the same seqid (a
 * header no one is writing). Anything else — no LUKS2 magic, LUKS1, a damaged or older copy, a
 * write in progress, an unknown checksum algorithm, unreadable JSON — returns undefined, and the
 * caller asks cryptsetup, which recovers, locks against writers and words the refusal.
 */
const BINARY_HEADER_BYTES = 4096;
const PRIMARY_MAGIC = Buffer.from('4c554b53babe', 'hex');
const SECONDARY_MAGIC = Buffer.from('534b554cbabe', 'hex');
/** §2: hdr_size is one of these (16 KiB … 4 MiB), the binary header plus the JSON area. */
const HEADER_SIZES = new Set([0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000]);
/** Checksum algorithms cryptsetup writes (sha256 by default) that node:crypto has. */
const CHECKSUM_ALGORITHMS = new Set(['sha1', 'sha256', 'sha512']);
const OFFSET = { version: 6, hdrSize: 8, seqid: 16, checksumAlg: 72, hdrOffset: 256, csum: 448 } as const;
const CSUM_BYTES = 64;

interface HeaderCopy {
  readonly seqid: bigint;
  readonly json: string;
}

/** The LUKS2 JSON metadata of `path` (a device, image or detached header), or undefined: ask cryptsetup. */
export async function readLuks2Json(path: string): Promise<Record<string, unknown> | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return undefined; // cryptsetup names why it cannot be opened
  }
  try {
    const first = Buffer.alloc(BINARY_HEADER_BYTES);
    if ((await file.read(first, 0, BINARY_HEADER_BYTES, 0)).bytesRead !== BINARY_HEADER_BYTES) {
      return undefined;
    }
    const size = first.readBigUInt64BE(OFFSET.hdrSize);
    if (!first.subarray(0, 6).equals(PRIMARY_MAGIC) || !HEADER_SIZES.has(Number(size))) {
      return undefined;
    }
    const hdrSize = Number(size);
    const both = Buffer.alloc(2 * hdrSize);
    if ((await file.read(both, 0, both.length, 0)).bytesRead !== both.length) {
      return undefined;
    }
    const primary = headerCopy(both.subarray(0, hdrSize), PRIMARY_MAGIC, 0);
    const secondary = headerCopy(both.subarray(hdrSize), SECONDARY_MAGIC, hdrSize);
    if (primary === undefined || secondary === undefined || primary.seqid !== secondary.seqid || primary.json !== secondary.json) {
      return undefined;
    }
    const metadata = JSON.parse(primary.json) as unknown;
    return typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata) ? (metadata as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  } finally {
    await file.close();
  }
}

/** One copy, checked (magic, version 2, its own size and offset, checksum), or undefined. */
function headerCopy(bytes: Buffer, magic: Buffer, offset: number): HeaderCopy | undefined {
  if (!bytes.subarray(0, 6).equals(magic) || bytes.readUInt16BE(OFFSET.version) !== 2) {
    return undefined;
  }
  if (bytes.readBigUInt64BE(OFFSET.hdrSize) !== BigInt(bytes.length) || bytes.readBigUInt64BE(OFFSET.hdrOffset) !== BigInt(offset)) {
    return undefined;
  }
  const algorithm = nulTerminated(bytes.subarray(OFFSET.checksumAlg, OFFSET.checksumAlg + 32));
  if (!CHECKSUM_ALGORITHMS.has(algorithm)) {
    return undefined;
  }
  const stored = Buffer.from(bytes.subarray(OFFSET.csum, OFFSET.csum + CSUM_BYTES));
  const zeroed = Buffer.from(bytes);
  zeroed.fill(0, OFFSET.csum, OFFSET.csum + CSUM_BYTES);
  const computed = createHash(algorithm).update(zeroed).digest();
  if (!stored.subarray(0, computed.length).equals(computed) || stored.subarray(computed.length).some((b) => b !== 0)) {
    return undefined;
  }
  return { seqid: bytes.readBigUInt64BE(OFFSET.seqid), json: nulTerminated(bytes.subarray(BINARY_HEADER_BYTES)) };
}

function nulTerminated(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString('utf8');
}
