import { MerkleNodeError, MerkleRangeError } from './merkle-errors';
import { largestPowerOfTwoBelow } from './merkle-hash';
import { checkSize, foldRange, type LeafRange, type NodeId, nodeKey, perfectSubtrees } from './tree-range';

/*
 * The shapes of proofs: which leaf ranges' Merkle Tree Hashes a proof lists, in its order. Each range
 * is a node of the RFC 9162 tree, so perfectSubtrees decomposes it into stored nodes and foldRange
 * makes the proof element from their hashes: a proof costs one query for O(log² n) rows at most
 * (O(log n) ranges of O(log n) perfect subtrees), not a walk over the leaves.
 */

/**
 * The ranges whose MTHs are PATH(index, D[size]) (RFC 9162 §2.1.3.1), in the proof's order: the
 * sibling of the leaf first, up to the sibling of the root's child last.
 */
export function inclusionProofRanges(index: number, size: number): LeafRange[] {
  checkSize(index, 'leaf index');
  checkSize(size, 'tree size');
  if (index >= size) {
    throw new MerkleRangeError('index-out-of-range', `leaf ${index} is not in a tree of ${size} leaves`);
  }
  // Top down, as the recursion descends: at each split the path goes into the half holding the leaf
  // and the proof lists the other half. The proof lists the deepest sibling first.
  const ranges: LeafRange[] = [];
  let begin = 0;
  let end = size;
  while (end - begin > 1) {
    const split = begin + largestPowerOfTwoBelow(end - begin);
    if (index < split) {
      ranges.push([split, end]);
      end = split;
    } else {
      ranges.push([begin, split]);
      begin = split;
    }
  }
  return ranges.reverse();
}

/**
 * The ranges whose MTHs are PROOF(from, D[to]) = SUBPROOF(from, D[to], true) (RFC 9162 §2.1.4.1), in
 * the proof's order. Empty when from = to (the RFC's proof for equal sizes). Refused for from = 0:
 * SUBPROOF has no case for m = 0 (every tree extends the empty one, there is nothing to prove), and
 * for from > to.
 */
export function consistencyProofRanges(from: number, to: number): LeafRange[] {
  checkSize(from, 'first tree size');
  checkSize(to, 'second tree size');
  if (from > to) {
    throw new MerkleRangeError('sizes-out-of-order', `a tree of ${to} leaves cannot extend one of ${from}`);
  }
  if (from === 0) {
    throw new MerkleRangeError('empty-tree', 'there is no consistency proof from the empty tree');
  }
  // Top down over SUBPROOF's recursion; `whole` is its flag b: true while the subtree is on the left
  // edge of the first tree, whose MTH the verifier already has (it is the first root's prefix).
  const ranges: LeafRange[] = [];
  let begin = 0;
  let end = to;
  let whole = true;
  while (from !== end) {
    const split = begin + largestPowerOfTwoBelow(end - begin);
    if (from <= split) {
      ranges.push([split, end]);
      end = split;
    } else {
      ranges.push([begin, split]);
      begin = split;
      whole = false;
    }
  }
  if (!whole) {
    // SUBPROOF(m, D[m], false) = {MTH(D[m])}: a subtree the first tree ends with, listed first.
    ranges.push([begin, end]);
  }
  return ranges.reverse();
}

/**
 * The stored nodes that make up the ranges (e.g. of a proof, or of an inclusion and a consistency
 * proof answered together), each once, in a stable order: what to load in one query.
 */
export function nodeIdsFor(ranges: readonly LeafRange[]): NodeId[] {
  const ids = new Map<string, NodeId>();
  for (const [begin, end] of ranges) {
    for (const id of perfectSubtrees(begin, end)) {
      ids.set(nodeKey(id), id);
    }
  }
  return [...ids.values()];
}

/**
 * The proof elements: for each range, the fold of its nodes' hashes taken from `nodes` (keyed by
 * nodeKey, e.g. loaded with the ids nodeIdsFor gave). A node that is not there is refused by name
 * rather than folded as something else.
 */
export function assembleProof(ranges: readonly LeafRange[], nodes: ReadonlyMap<string, Buffer>): Buffer[] {
  return ranges.map(([begin, end]) =>
    foldRange(
      perfectSubtrees(begin, end).map((id) => {
        const hash = nodes.get(nodeKey(id));
        if (hash === undefined) {
          throw new MerkleNodeError('missing-node', `node ${nodeKey(id)}, needed for leaves [${begin}, ${end}), was not given`);
        }
        return hash;
      }),
    ),
  );
}
