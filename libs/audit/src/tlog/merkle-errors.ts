/**
 * Refusals of the Merkle tree code. Each carries a `problem` naming what was wrong, so a caller can
 * branch on it (e.g. a proof route answering 400 for an index beyond the tree) without reading the
 * message. They are plain errors, not DomainErrors: the tree math knows no HTTP and no request, and
 * the routes that take sizes from a client check them against the log before calling here.
 */

/** What was wrong with a size, index or range given to the tree functions. */
export type MerkleRangeProblem =
  /** Not a non-negative safe integer (sizes and indexes are exact only up to 2^53 − 1). */
  | 'not-a-size'
  /** A leaf index not below the tree size. */
  | 'index-out-of-range'
  /** A range or size pair whose end is before its start (e.g. a consistency proof from 8 to 5). */
  | 'sizes-out-of-order'
  /** A consistency proof from the empty tree: SUBPROOF (RFC 9162 §2.1.4.1) has no case for m = 0. */
  | 'empty-tree'
  /** A leaf range whose Merkle Tree Hash is no node of any tree RFC 9162 §2.1.1 builds (see perfectSubtrees). */
  | 'unaligned-range'
  /** Appending would take the tree beyond 2^53 − 1 leaves. */
  | 'tree-full';

export class MerkleRangeError extends Error {
  constructor(
    readonly problem: MerkleRangeProblem,
    message: string,
  ) {
    super(message);
    this.name = 'MerkleRangeError';
  }
}

/** What was wrong with node hashes given to the tree functions (a border, a leaf batch, a node store). */
export type MerkleNodeProblem =
  /** Not a 32-byte SHA-256 value. */
  | 'not-a-hash'
  /** A tree border with a different number of nodes than its size has perfect subtrees. */
  | 'border-mismatch'
  /** A node a proof needs is not in the nodes given. */
  | 'missing-node';

export class MerkleNodeError extends Error {
  constructor(
    readonly problem: MerkleNodeProblem,
    message: string,
  ) {
    super(message);
    this.name = 'MerkleNodeError';
  }
}

/** Why a proof was not accepted (RFC 9162 §2.1.3.2, §2.1.4.2). */
export type MerkleProofProblem =
  /** A size or index that is not a non-negative safe integer. */
  | 'not-a-size'
  /** The leaf index is not below the tree size. */
  | 'index-out-of-range'
  /** The first tree is larger than the second. */
  | 'sizes-out-of-order'
  /** A leaf hash, root or proof element that is not 32 bytes. */
  | 'not-a-hash'
  /** The proof has more or fewer elements than the sizes call for. */
  | 'proof-length'
  /** The proof leads to a different root than the one given (for consistency: the second tree's). */
  | 'root-mismatch'
  /** Consistency: the proof leads to a different root for the first tree than the one given. */
  | 'first-root-mismatch';

/**
 * A proof that does not prove the claim. The verifiers throw rather than answer false, so a caller
 * that forgets to look at the answer cannot accept a bad proof.
 */
export class MerkleProofError extends Error {
  constructor(
    readonly problem: MerkleProofProblem,
    message: string,
  ) {
    super(message);
    this.name = 'MerkleProofError';
  }
}
