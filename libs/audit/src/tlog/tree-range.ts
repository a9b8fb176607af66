import { MerkleRangeError } from './merkle-errors';
import { EMPTY_TREE_ROOT, checkHash, nodeHash } from './merkle-hash';

/**
 * A perfect aligned subtree: the node at `level` L and `index` i is the Merkle Tree Hash of leaves
 * [i·2^L, (i+1)·2^L). Level 0 holds the leaf hashes. These are the nodes `audit_tree_nodes` stores;
 * a node's hash never changes once its 2^L leaves exist, whatever the tree grows to.
 */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A leaf range [begin, end). */
export type LeafRange = readonly [begin: number, end: number];

/** `level/index`, the key of a node in a map of loaded nodes (see assembleProof). */
export function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}

/** The leaves a node covers. */
export function nodeRange(id: NodeId): LeafRange {
  const width = 2 ** id.level;
  return [id.index * width, (id.index + 1) * width];
}

/**
 * Refuses a size or index that is not a non-negative safe integer: above 2^53 − 1 a number no longer
 * holds every integer, and index arithmetic would silently round.
 */
export function checkSize(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new MerkleRangeError('not-a-size', `${what} must be a non-negative integer below 2^53, not ${String(value)}`);
  }
}

/**
 * The leaf range [begin, end) as maximal perfect aligned subtrees, left to right, whose hashes
 * foldRange combines into the range's Merkle Tree Hash.
 *
 * RFC 9162 §2.1.1 splits n leaves at the largest power of two k < n: the left part is perfect, the
 * right part is split the same way. So MTH(D[0:n]) is the fold of one perfect subtree per set bit of
 * n, largest first; the same holds for a range whose start is a multiple of the largest power of two
 * ≤ its length. Every node of an RFC 9162 tree is such a range, and so is every range an inclusion or
 * consistency proof names. Any other range (e.g. [1, 4), whose MTH splits at 2 where the perfect
 * subtrees split at 1) is refused, as is an empty range other than [0, 0), the empty tree.
 */
export function perfectSubtrees(begin: number, end: number): NodeId[] {
  checkSize(begin, 'range start');
  checkSize(end, 'range end');
  if (end < begin) {
    throw new MerkleRangeError('sizes-out-of-order', `leaf range [${begin}, ${end}) ends before it starts`);
  }
  if (end === begin) {
    if (begin === 0) {
      return [];
    }
    throw new MerkleRangeError('unaligned-range', `leaf range [${begin}, ${end}) is empty`);
  }
  let width = 1;
  let level = 0;
  while (width * 2 <= end - begin) {
    width *= 2;
    level++;
  }
  if (begin % width !== 0) {
    throw new MerkleRangeError(
      'unaligned-range',
      `leaf range [${begin}, ${end}) does not start at a multiple of ${width}, the size of its left subtree`,
    );
  }
  const ids: NodeId[] = [];
  let at = begin;
  for (; at < end; level--, width /= 2) {
    if (at + width <= end) {
      ids.push({ level, index: at / width });
      at += width;
    }
  }
  return ids;
}

/**
 * The Merkle Tree Hash of a range from the hashes of its perfectSubtrees, left to right: folded from
 * the right, as RFC 9162 §2.1.1 nests its splits (MTH = H(p1, H(p2, … H(pk−1, pk)))). No hashes is the
 * empty tree.
 */
export function foldRange(hashes: readonly Buffer[]): Buffer {
  if (hashes.length === 0) {
    return Buffer.from(EMPTY_TREE_ROOT);
  }
  hashes.forEach((hash, i) => checkHash(hash, `subtree hash ${i}`));
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) {
    acc = nodeHash(hashes[i]!, acc);
  }
  return acc;
}
