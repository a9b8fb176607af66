// The RFC 9162 Merkle tree of the audit log (issue 11): hashing, the node store's shapes, appending and proofs.
export * from './merkle-errors';
export { EMPTY_TREE_ROOT, MERKLE_HASH_SIZE, leafHash, nodeHash, rootOfLeafHashes } from './merkle-hash';
export { assembleProof, consistencyProofRanges, inclusionProofRanges, nodeIdsFor } from './proof-ranges';
export { rootFromInclusionProof, verifyConsistency, verifyInclusion } from './proof-verify';
export { type AppendResult, EMPTY_BORDER, type TreeBorder, type TreeNode, appendLeaves, borderIds, rootOfBorder } from './tree-append';
export { type LeafRange, type NodeId, foldRange, nodeKey, nodeRange, perfectSubtrees } from './tree-range';
export * from './signed-note';
export * from './checkpoint';
