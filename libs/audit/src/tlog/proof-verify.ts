import { MerkleProofError } from './merkle-errors';
import { EMPTY_TREE_ROOT, MERKLE_HASH_SIZE, nodeHash } from './merkle-hash';

/*
 * The verifiers of RFC 9162 §2.1.3.2 and §2.1.4.2. They walk the proof with the bits of the leaf
 * index and tree size alone, so they trust nothing of the prover but the hashes, and they throw a
 * MerkleProofError naming the first thing wrong: a verifier that answered false could be ignored.
 * Sizes are numbers; halving uses Math.floor, never 32-bit bitwise operators.
 */

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5, without the final comparison):
 * what a tree of `size` leaves has at its root if `leafHash` is its leaf `index`.
 */
export function rootFromInclusionProof(leafHash: Buffer, index: number, size: number, proof: readonly Buffer[]): Buffer {
  checkProofSize(index, 'leaf index');
  checkProofSize(size, 'tree size');
  if (index >= size) {
    throw new MerkleProofError('index-out-of-range', `leaf ${index} is not in a tree of ${size} leaves`);
  }
  checkProofHash(leafHash, 'the leaf hash');
  proof.forEach((hash, i) => checkProofHash(hash, `inclusion proof element ${i}`));
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) {
      throw proofLength('inclusion', proof.length, `leaf ${index} of ${size}`);
    }
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) {
    throw proofLength('inclusion', proof.length, `leaf ${index} of ${size}`);
  }
  return Buffer.from(r);
}

/** Accepts (returns) only when `proof` shows `leafHash` is leaf `index` of the tree of `size` leaves with `root`. */
export function verifyInclusion(leafHash: Buffer, index: number, size: number, proof: readonly Buffer[], root: Buffer): void {
  const computed = rootFromInclusionProof(leafHash, index, size, proof);
  checkProofHash(root, 'the root');
  if (!computed.equals(root)) {
    throw new MerkleProofError('root-mismatch', `the inclusion proof for leaf ${index} of ${size} leads to another root`);
  }
}

/**
 * Accepts (returns) only when `proof` shows the tree of `size1` leaves with `root1` is a prefix of the
 * tree of `size2` leaves with `root2` (RFC 9162 §2.1.4.2). Equal sizes take an empty proof and equal
 * roots. The empty tree is a prefix of every tree, so size1 = 0 takes an empty proof, but root1 must
 * still be the empty tree's (RFC 9162 §2.1.1): a claim about a wrong root is not accepted.
 */
export function verifyConsistency(size1: number, size2: number, proof: readonly Buffer[], root1: Buffer, root2: Buffer): void {
  checkProofSize(size1, 'first tree size');
  checkProofSize(size2, 'second tree size');
  if (size1 > size2) {
    throw new MerkleProofError('sizes-out-of-order', `a tree of ${size2} leaves cannot extend one of ${size1}`);
  }
  checkProofHash(root1, 'the first root');
  checkProofHash(root2, 'the second root');
  proof.forEach((hash, i) => checkProofHash(hash, `consistency proof element ${i}`));
  const between = `trees of ${size1} and ${size2} leaves`;
  if (size1 === 0 || size1 === size2) {
    if (proof.length !== 0) {
      throw proofLength('consistency', proof.length, between);
    }
    if (size1 === 0 && !root1.equals(EMPTY_TREE_ROOT)) {
      throw new MerkleProofError('first-root-mismatch', 'the first root is not the empty tree\'s');
    }
    if (size1 !== 0 && !root1.equals(root2)) {
      throw new MerkleProofError('root-mismatch', `two trees of ${size1} leaves have different roots`);
    }
    return;
  }
  if (proof.length === 0) {
    throw proofLength('consistency', 0, between);
  }
  // When the first tree is perfect its root is a node of the second tree, and the RFC's proof leaves it out.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : proof;
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) {
      throw proofLength('consistency', proof.length, between);
    }
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) {
    throw proofLength('consistency', proof.length, between);
  }
  if (!fr.equals(root1)) {
    throw new MerkleProofError('first-root-mismatch', `the consistency proof between ${between} leads to another first root`);
  }
  if (!sr.equals(root2)) {
    throw new MerkleProofError('root-mismatch', `the consistency proof between ${between} leads to another second root`);
  }
}

function isPowerOfTwo(n: number): boolean {
  let p = 1;
  while (p < n) {
    p *= 2;
  }
  return p === n;
}

function checkProofSize(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MerkleProofError('not-a-size', `${what} must be a non-negative integer below 2^53, not ${String(value)}`);
  }
}

function checkProofHash(hash: unknown, what: string): asserts hash is Buffer {
  if (!Buffer.isBuffer(hash) || hash.length !== MERKLE_HASH_SIZE) {
    throw new MerkleProofError('not-a-hash', `${what} is not a ${MERKLE_HASH_SIZE}-byte SHA-256 hash`);
  }
}

function proofLength(kind: string, length: number, of: string): MerkleProofError {
  return new MerkleProofError('proof-length', `a ${kind} proof of ${length} hashes does not fit ${of}`);
}
