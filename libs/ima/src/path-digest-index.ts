import { isUtf8 } from 'node:buffer';

/**
 * The runtime policy's `digests` list, keyed by the paths' UTF-8 bytes, for the question a round asks
 * of nearly every entry of a binary list: does the list allow this digest for this name? Answered in
 * place — the entry's name and digest are read where they lie in the list (BinaryListEntry), with no
 * path string, no hex string and no view made.
 *
 * Why: probing the policy's Map of 100,000 paths with a freshly decoded string, then the path's Set,
 * then comparing hex strings, touched four or five places in memory an entry and was a fifth of a full
 * round (bench/ima.bench.ts). Here a slot's hash is checked first and the path and its digests sit
 * side by side in one buffer: one place touched on a hit.
 *
 * The index answers as the Map would, or defers to it: a path is found by its exact UTF-8 bytes, and
 * a key that does not survive a round trip through UTF-8 (a lone surrogate in the policy's JSON) is
 * left out, so a found name decodes to its key. Its answers:
 *   true       the name is listed and this digest is one of its bare-hex digests;
 *   false      the Map's answer too: the name is listed without this bare digest, or its bytes are
 *              valid UTF-8 and no key has them (so its decoding is no key either);
 *   undefined  ask the Map: the path lists more digests than kept inline, the name is not valid UTF-8
 *              (it decodes lossily, to U+FFFD, perhaps to a key), or the lookup reached MAX_PROBES.
 * "false" is never "not found here" where the Map would allow: the full judgement that follows a
 * false runs the excludes, whose round budget (EXCLUDE_ROUND_VISITS) a shortcut entry never spends, so
 * a list the Map passes must not reach it. "alg:hex" digests are not indexed (the full judgement reads
 * them, as the Map shortcut never matched them). Lookups stop after MAX_PROBES slots, and a key that
 * would need more is left out (a lookup for it always reaches the bound: later keys only fill slots),
 * so a policy of colliding paths (a hostile canary's capture, `--from-machine`) costs at most that
 * per entry before the Map answers.
 */
export class PathDigestIndex {
  /** Slots probed at most per lookup. */
  static readonly MAX_PROBES = 32;
  /** Bare digests kept with their path; a path listing more is answered by the Map. */
  static readonly INLINE_DIGESTS = 16;

  private constructor(
    /** Per slot: the record's offset in `records` + 1, or 0 for an empty slot. */
    private readonly slots: Int32Array,
    /** Per slot: the path's hash, compared before the record is read. */
    private readonly hashes: Int32Array,
    /** Records: u16 path length ‖ path ‖ u8 digest count (MANY_DIGESTS: ask the Map) ‖ (u8 size ‖ digest)*. */
    private readonly records: Buffer,
  ) {}

  static build(digests: ReadonlyMap<string, ReadonlySet<string>>): PathDigestIndex {
    // Sized first, then written in place: a buffer per path and digest made building the index of
    // a 100,000-path policy cost a third of parsing the policy.
    let keys = 0;
    let bytes = 0;
    for (const [path, allowed] of digests) {
      const length = indexedLength(path);
      if (length === undefined) {
        continue;
      }
      keys += 1;
      bytes += 3 + length;
      if (bareCount(allowed) <= PathDigestIndex.INLINE_DIGESTS) {
        for (const hex of allowed) {
          bytes += isBare(hex) ? 1 + hex.length / 2 : 0;
        }
      }
    }
    let capacity = 16;
    while (capacity < 2 * keys) {
      capacity *= 2;
    }
    const slots = new Int32Array(capacity);
    const hashes = new Int32Array(capacity);
    const records = Buffer.alloc(bytes);
    let at = 0;
    for (const [path, allowed] of digests) {
      const length = indexedLength(path);
      if (length === undefined) {
        continue;
      }
      const record = at;
      at = records.writeUInt16LE(length, at);
      at += records.write(path, at, 'utf8');
      const hash = pathHash(records, record + 2, at);
      const slot = freeSlot(slots, hash);
      if (slot === undefined) {
        // Left out: its bytes are overwritten by the next record.
        at = record;
        continue;
      }
      slots[slot] = record + 1;
      hashes[slot] = hash;
      const count = bareCount(allowed);
      at = records.writeUInt8(count > PathDigestIndex.INLINE_DIGESTS ? MANY_DIGESTS : count, at);
      if (count <= PathDigestIndex.INLINE_DIGESTS) {
        for (const hex of allowed) {
          if (isBare(hex)) {
            at = records.writeUInt8(hex.length / 2, at);
            at += records.write(hex, at, 'hex');
          }
        }
      }
    }
    return new PathDigestIndex(slots, hashes, records);
  }

  /** Whether the path whose UTF-8 bytes are name[nameStart, nameEnd) is allowed the digest digest[digestStart, digestEnd) (see the class). */
  allows(name: Uint8Array, nameStart: number, nameEnd: number, digest: Uint8Array, digestStart: number, digestEnd: number): boolean | undefined {
    const record = this.find(name, nameStart, nameEnd);
    if (record === PROBE_BOUND) {
      return undefined;
    }
    if (record === ABSENT) {
      // Bytes that are not UTF-8 decode lossily and may spell a key (0xFF and "\uFFFD" alike): the Map decides.
      return isUtf8(name.subarray(nameStart, nameEnd)) ? false : undefined;
    }
    const records = this.records;
    let at = record + 2 + (nameEnd - nameStart);
    const count = records[at]!;
    if (count === MANY_DIGESTS) {
      return undefined;
    }
    at += 1;
    const size = digestEnd - digestStart;
    for (let k = 0; k < count; k += 1) {
      const length = records[at]!;
      if (length === size && sameBytes(records, at + 1, digest, digestStart, size)) {
        return true;
      }
      at += 1 + length;
    }
    return false;
  }

  /** The offset of the record of name[start, end); ABSENT at an empty slot (no key has these bytes); PROBE_BOUND after MAX_PROBES slots. */
  private find(name: Uint8Array, start: number, end: number): number {
    const hash = pathHash(name, start, end);
    const mask = this.slots.length - 1;
    const length = end - start;
    for (let probe = 0, slot = hash & mask; probe < PathDigestIndex.MAX_PROBES; probe += 1, slot = (slot + 1) & mask) {
      const record = this.slots[slot]! - 1;
      if (record === -1) {
        return ABSENT;
      }
      if (this.hashes[slot] === hash && this.records.readUInt16LE(record) === length && sameBytes(this.records, record + 2, name, start, length)) {
        return record;
      }
    }
    return PROBE_BOUND;
  }
}

/**
 * The UTF-8 length of a path the index can hold, or undefined: a lone surrogate does not survive a
 * round trip through UTF-8 (it is written as U+FFFD), and a record's length field is 16 bits.
 */
const LONE_SURROGATE = /\p{Cs}/u;

function indexedLength(path: string): number | undefined {
  if (LONE_SURROGATE.test(path)) {
    return undefined;
  }
  const length = Buffer.byteLength(path, 'utf8');
  return length <= 0xffff ? length : undefined;
}

/** A digest the policy gives as bare hex (the policy's parser checked its form), not "alg:hex". */
function isBare(hex: string): boolean {
  return !hex.includes(':');
}

function bareCount(allowed: ReadonlySet<string>): number {
  let count = 0;
  for (const hex of allowed) {
    count += isBare(hex) ? 1 : 0;
  }
  return count;
}

/** find(): an empty slot was reached, so no indexed key has these bytes, and none was left out (its slots would all be full). */
const ABSENT = -1;
/** find(): MAX_PROBES slots held other keys; a key left out by the bound may have these bytes. */
const PROBE_BOUND = -2;

/** A record's digest count meaning "more than INLINE_DIGESTS: ask the Map". */
const MANY_DIGESTS = 0xff;

/** The first free slot for `name` within MAX_PROBES, or undefined (the key is left out). Keys are distinct (they come from a Map). */
function freeSlot(slots: Int32Array, hash: number): number | undefined {
  const mask = slots.length - 1;
  for (let probe = 0, slot = hash & mask; probe < PathDigestIndex.MAX_PROBES; probe += 1, slot = (slot + 1) & mask) {
    if (slots[slot] === 0) {
      return slot;
    }
  }
  return undefined;
}

function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i += 1) {
    if (a[aStart + i] !== b[bStart + i]) {
      return false;
    }
  }
  return true;
}

/**
 * FNV-1a over bytes[start, end) (32 bits), then MurmurHash3's finaliser so the low bits, which pick
 * the slot, mix every byte. Exported for the test that builds a policy of colliding paths.
 */
export function pathHash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i += 1) {
    h = Math.imul(h ^ bytes[i]!, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
