import { MerkleNodeError, MerkleRangeError } from './merkle-errors';
import { checkHash, nodeHash } from './merkle-hash';
import { checkSize, foldRange, type NodeId, perfectSubtrees } from './tree-range';

/**
 * The right border (compact range) of a tree of `size` leaves: the hashes of perfectSubtrees(0, size),
 * left to right, one per set bit of size, largest first. With it alone the sequencer can append leaves
 * and compute the new root: O(log n) hashes, never the whole tree.
 */
export interface TreeBorder {
  readonly size: number;
  readonly nodes: readonly Buffer[];
}

/** A perfect aligned subtree and its hash: one row of `audit_tree_nodes`. */
export interface TreeNode extends NodeId {
  readonly hash: Buffer;
}

export interface AppendResult {
  readonly border: TreeBorder;
  /**
   * Every perfect node the batch completes, each once, children before parents: the new leaves at
   * level 0 and every subtree whose last leaf is among them. Storing them keeps the node table
   * complete: every perfect subtree of the new tree is stored.
   */
  readonly newNodes: TreeNode[];
  /** MTH of the tree after the batch (RFC 9162 §2.1.1). */
  readonly root: Buffer;
}

/** The nodes whose hashes make the border of a tree of `size` leaves: what the sequencer loads. */
export function borderIds(size: number): NodeId[] {
  return perfectSubtrees(0, size);
}

/** The empty tree's border. */
export const EMPTY_BORDER: TreeBorder = Object.freeze({ size: 0, nodes: Object.freeze([]) });

/**
 * Appends leaf hashes (RFC 9162 §2.1.1 leaf hashes, see leafHash) as leaves size, size+1, …. Each new
 * leaf goes on the right of the border; while the two rightmost border nodes are at the same level,
 * they are complete siblings and merge into their parent. O(batch + log n) hashes: every merge makes a
 * new stored node, and at most log n of them involve nodes from before the batch.
 */
export function appendLeaves(border: TreeBorder, leafHashes: readonly Buffer[]): AppendResult {
  const stack = borderNodes(border);
  if (border.size + leafHashes.length > Number.MAX_SAFE_INTEGER) {
    throw new MerkleRangeError('tree-full', `a tree of ${border.size} leaves cannot take ${leafHashes.length} more below 2^53`);
  }
  leafHashes.forEach((hash, i) => checkHash(hash, `leaf hash ${i} of the batch`));
  let size = border.size;
  const newNodes: TreeNode[] = [];
  for (const hash of leafHashes) {
    let node: TreeNode = { level: 0, index: size, hash: Buffer.from(hash) };
    newNodes.push(node);
    size++;
    for (let left = stack[stack.length - 1]; left !== undefined && left.level === node.level; left = stack[stack.length - 1]) {
      stack.pop();
      node = { level: node.level + 1, index: left.index / 2, hash: nodeHash(left.hash, node.hash) };
      newNodes.push(node);
    }
    stack.push(node);
  }
  const next: TreeBorder = { size, nodes: stack.map((n) => n.hash) };
  return { border: next, newNodes, root: rootOfBorder(next) };
}

/** MTH of the tree a border describes (RFC 9162 §2.1.1); the empty tree's root for size 0. */
export function rootOfBorder(border: TreeBorder): Buffer {
  borderNodes(border);
  return foldRange(border.nodes);
}

/** The border's nodes with their ids, after checking they are as many as its size calls for. */
function borderNodes(border: TreeBorder): TreeNode[] {
  checkSize(border.size, 'tree size');
  const ids = borderIds(border.size);
  if (border.nodes.length !== ids.length) {
    throw new MerkleNodeError(
      'border-mismatch',
      `a tree of ${border.size} leaves has ${ids.length} border nodes, not ${border.nodes.length}`,
    );
  }
  return ids.map((id, i) => {
    const hash = border.nodes[i];
    checkHash(hash, `border node ${i}`);
    return { ...id, hash };
  });
}
