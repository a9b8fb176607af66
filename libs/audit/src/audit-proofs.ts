import { type StoredCheckpoint, AuditCheckpointStore } from './audit-checkpoints';
import { AuditError } from './audit-errors';
import { AuditTreeStore } from './audit-tree-store';
import type { Queryable } from './queryable';
import { assembleProof, consistencyProofRanges, inclusionProofRanges, type LeafRange, nodeIdsFor } from './tlog';

export interface InclusionProof {
  readonly seq: number;
  readonly treeSize: number;
  readonly proof: Buffer[];
  readonly checkpoint: StoredCheckpoint;
}

export interface ConsistencyProof {
  readonly from: number;
  readonly to: number;
  readonly proof: Buffer[];
  readonly checkpoint: StoredCheckpoint;
}

/**
 * Proofs against *signed* tree sizes only: a proof is worth something to a client that holds a
 * checkpoint of that size, so the size defaults to the latest checkpoint and any other size must be
 * one a checkpoint was signed for. Each proof reads O(log² n) stored nodes in one query.
 */
export const AuditProofs = {
  /** That record `seq` is leaf seq−1 of the tree of `size` leaves (RFC 9162 §2.1.3.1). */
  async inclusion(db: Queryable, seq: number, size?: number): Promise<InclusionProof> {
    const checkpoint = await signedSize(db, size);
    if (seq < 1 || seq > checkpoint.treeSize) {
      throw new AuditError(
        'audit.not-sequenced',
        `record ${seq} is not in the tree of size ${checkpoint.treeSize}${size === undefined ? ' (the latest checkpoint; it may still be pending)' : ''}`,
      );
    }
    const proof = await proofFromRanges(db, inclusionProofRanges(seq - 1, checkpoint.treeSize));
    return { seq, treeSize: checkpoint.treeSize, proof, checkpoint };
  },

  /** That the tree of `from` leaves is a prefix of the tree of `to` leaves (RFC 9162 §2.1.4.1). */
  async consistency(db: Queryable, from: number, to?: number): Promise<ConsistencyProof> {
    const checkpoint = await signedSize(db, to);
    if (from < 1 || from > checkpoint.treeSize) {
      throw new AuditError('audit.invalid-size', `from must be between 1 and ${checkpoint.treeSize} (the size proven to), not ${from}`);
    }
    const proof = await proofFromRanges(db, consistencyProofRanges(from, checkpoint.treeSize));
    return { from, to: checkpoint.treeSize, proof, checkpoint };
  },

  /** The newest signed checkpoint. */
  async latestCheckpoint(db: Queryable): Promise<StoredCheckpoint> {
    return signedSize(db, undefined);
  },
};

async function signedSize(db: Queryable, size: number | undefined): Promise<StoredCheckpoint> {
  const checkpoint = size === undefined ? await AuditCheckpointStore.latest(db) : await AuditCheckpointStore.ofSize(db, size);
  if (checkpoint === undefined) {
    throw new AuditError(
      'audit.no-checkpoint',
      size === undefined
        ? 'no checkpoint has been signed yet: the worker\'s audit sequencer signs the first one when it starts'
        : `no checkpoint was signed at tree size ${size}; proofs are given for signed sizes only`,
    );
  }
  return checkpoint;
}

async function proofFromRanges(db: Queryable, ranges: readonly LeafRange[]): Promise<Buffer[]> {
  return assembleProof(ranges, await AuditTreeStore.nodes(db, nodeIdsFor(ranges)));
}
