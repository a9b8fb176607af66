import { createHash } from 'node:crypto';
import { MerkleNodeError } from './merkle-errors';

/** SHA-256 output length: every leaf hash, node hash and root is this long. */
export const MERKLE_HASH_SIZE = 32;

// RFC 9162 §2.1.1: the one-byte prefixes that keep a leaf hash from ever equalling a node hash
// (the second-preimage defence the RFC's §2.1.1 note explains).
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** MTH({}) = SHA-256() (RFC 9162 §2.1.1): the root of the empty tree. Copy it before handing it out. */
export const EMPTY_TREE_ROOT: Buffer = createHash('sha256').digest();

/** MTH({d}) = SHA-256(0x00 ‖ d) (RFC 9162 §2.1.1): the hash of one leaf input. */
export function leafHash(leaf: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(leaf).digest();
}

/** SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1): the hash of an interior node from its children's hashes. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/** For n > 1, the largest power of two strictly below n: the split point k of RFC 9162 §2.1.1. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) {
    k *= 2;
  }
  return k;
}

/**
 * MTH(D[n]) straight from the recursive definition of RFC 9162 §2.1.1, over leaf hashes: split at the
 * largest power of two k < n and hash MTH(D[0:k]) with MTH(D[k:n]). O(n); the reference the
 * incremental code (tree-append.ts) and the node store are checked against, not used by them.
 */
export function rootOfLeafHashes(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0) {
    return Buffer.from(EMPTY_TREE_ROOT);
  }
  hashes.forEach((hash, i) => checkHash(hash, `leaf hash ${i}`));
  return mth(hashes, 0, hashes.length);
}

function mth(hashes: readonly Buffer[], begin: number, end: number): Buffer {
  if (end - begin === 1) {
    return Buffer.from(hashes[begin]!);
  }
  const k = largestPowerOfTwoBelow(end - begin);
  return nodeHash(mth(hashes, begin, begin + k), mth(hashes, begin + k, end));
}

/** Refuses anything but a 32-byte hash, naming it (`what`) in the error. */
export function checkHash(hash: unknown, what: string): asserts hash is Buffer {
  if (!Buffer.isBuffer(hash) || hash.length !== MERKLE_HASH_SIZE) {
    throw new MerkleNodeError('not-a-hash', `${what} is not a ${MERKLE_HASH_SIZE}-byte SHA-256 hash`);
  }
}
