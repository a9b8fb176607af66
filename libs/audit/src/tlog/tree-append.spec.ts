import { Prng } from '../../../../test/support/fuzz';
import { MerkleNodeError, MerkleRangeError } from './merkle-errors';
import { EMPTY_TREE_ROOT, leafHash, rootOfLeafHashes } from './merkle-hash';
import { appendLeaves, borderIds, EMPTY_BORDER, rootOfBorder, type TreeBorder, type TreeNode } from './tree-append';
import { nodeKey, nodeRange } from './tree-range';

const MAX = 70;
const leaves = Array.from({ length: MAX }, (_, i) => leafHash(Buffer.from(`audit record ${i}`)));

/** Batch sizes that add up to `total`: random, or the two extremes. */
function splits(total: number, rng: Prng): number[][] {
  const random = (): number[] => {
    const batches: number[] = [];
    for (let left = total; left > 0; ) {
      const n = 1 + rng.below(Math.min(left, 9));
      batches.push(n);
      left -= n;
    }
    return batches;
  };
  return [Array.from({ length: total }, () => 1), total === 0 ? [] : [total], random(), random(), random()];
}

/**
 * Appends the leaves in the given batches as the sequencer does: each batch starts from
 * the border loaded from the node store (borderIds), and stores the batch's new nodes.
 */
function sequence(batches: readonly number[]): { store: Map<string, TreeNode>; roots: Buffer[] } {
  const store = new Map<string, TreeNode>();
  const roots: Buffer[] = [];
  let size = 0;
  for (const n of batches) {
    const border: TreeBorder = { size, nodes: borderIds(size).map((id) => store.get(nodeKey(id))!.hash) };
    const result = appendLeaves(border, leaves.slice(size, size + n));
    for (const node of result.newNodes) {
      if (store.has(nodeKey(node))) {
        throw new Error(`node ${nodeKey(node)} was made twice`);
      }
      store.set(nodeKey(node), node);
    }
    size += n;
    // The border handed back is the one the store now gives.
    const stored = borderIds(size).map((id) => store.get(nodeKey(id))?.hash);
    if (result.border.size !== size || !result.border.nodes.every((hash, i) => hash.equals(stored[i]!)) || stored.length !== result.border.nodes.length) {
      throw new Error(`after ${size} leaves the border is not the stored one`);
    }
    if (!rootOfBorder(result.border).equals(result.root)) {
      throw new Error(`after ${size} leaves the root is not the border's`);
    }
    roots.push(result.root);
  }
  return { store, roots };
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

describe('appendLeaves', () => {
  it('stores, in any batch split, exactly every perfect subtree of the tree, each the MTH of its leaves, and gives the RFC 9162 root', () => {
    // The reference, straight from RFC 9162 §2.1.1: every perfect aligned subtree of the 70 leaves and its MTH…
    const perfect = new Map<string, { end: number; hash: string }>();
    for (let level = 0; 2 ** level <= MAX; level++) {
      for (let index = 0; (index + 1) * 2 ** level <= MAX; index++) {
        const [begin, end] = nodeRange({ level, index });
        perfect.set(nodeKey({ level, index }), { end, hash: rootOfLeafHashes(leaves.slice(begin, end)).toString('hex') });
      }
    }
    // …and the root of every prefix.
    const prefixRoots = Array.from({ length: MAX + 1 }, (_, size) => rootOfLeafHashes(leaves.slice(0, size)).toString('hex'));
    const rng = new Prng(0x11);
    for (let total = 0; total <= MAX; total++) {
      const expected = new Map([...perfect].filter(([, node]) => node.end <= total).map(([key, node]) => [key, node.hash]));
      for (const batches of splits(total, rng)) {
        const { store, roots } = sequence(batches);
        const sizes = batches.map((_, i) => batches.slice(0, i + 1).reduce((a, b) => a + b, 0));
        expect({ batches, roots: roots.map((r) => r.toString('hex')) }).toEqual({ batches, roots: sizes.map((n) => prefixRoots[n]) });
        expect({ batches, store: new Map([...store].map(([key, node]) => [key, node.hash.toString('hex')])) }).toEqual({ batches, store: expected });
      }
    }
  });

  it('lists new nodes children first, so a parent is stored only after both of its children', () => {
    const { newNodes } = appendLeaves({ size: 3, nodes: [rootOfLeafHashes(leaves.slice(0, 2)), leaves[2]!] }, leaves.slice(3, 8));
    expect(newNodes.map(nodeKey)).toEqual(['0/3', '1/1', '2/0', '0/4', '0/5', '1/2', '0/6', '0/7', '1/3', '2/1', '3/0']);
  });

  it('changes nothing for an empty batch', () => {
    const border: TreeBorder = { size: 5, nodes: [rootOfLeafHashes(leaves.slice(0, 4)), leaves[4]!] };
    const result = appendLeaves(border, []);
    expect(result.newNodes).toEqual([]);
    expect(result.border).toEqual(border);
    expect(result.root).toEqual(rootOfLeafHashes(leaves.slice(0, 5)));
  });

  it('keeps the node indexes exact next to 2^53 leaves', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const nodes = borderIds(max - 1).map((_, i) => leaves[i % MAX]!);
    const { newNodes, border } = appendLeaves({ size: max - 1, nodes }, [leaves[0]!]);
    expect(newNodes.map(nodeKey)).toEqual([`0/${max - 1}`]);
    expect(border.nodes).toHaveLength(53);
    const full = appendLeaves({ size: 2 ** 52 - 1, nodes: borderIds(2 ** 52 - 1).map(() => leaves[0]!) }, [leaves[1]!]);
    expect(full.newNodes.map(nodeKey).at(-1)).toBe('52/0');
    expect(full.border.nodes).toHaveLength(1);
  });

  it('refuses a tree beyond 2^53 − 1 leaves', () => {
    const nodes = borderIds(Number.MAX_SAFE_INTEGER).map(() => leaves[0]!);
    const error = thrown(() => appendLeaves({ size: Number.MAX_SAFE_INTEGER, nodes }, [leaves[1]!]));
    expect(error).toBeInstanceOf(MerkleRangeError);
    expect(error).toMatchObject({ problem: 'tree-full', message: `a tree of ${Number.MAX_SAFE_INTEGER} leaves cannot take 1 more below 2^53` });
  });

  it('refuses a border with the wrong number of nodes for its size, naming both', () => {
    for (const border of [
      { size: 5, nodes: [leaves[0]!] },
      { size: 4, nodes: [leaves[0]!, leaves[1]!] },
      { size: 0, nodes: [leaves[0]!] },
    ]) {
      const error = thrown(() => appendLeaves(border, [leaves[9]!]));
      expect(error).toBeInstanceOf(MerkleNodeError);
      expect(error).toMatchObject({ problem: 'border-mismatch' });
      expect(thrown(() => rootOfBorder(border))).toMatchObject({ problem: 'border-mismatch' });
    }
    expect(thrown(() => rootOfBorder({ size: 5, nodes: [leaves[0]!] }))).toMatchObject({
      message: 'a tree of 5 leaves has 2 border nodes, not 1',
    });
  });

  it('refuses hashes that are not 32 bytes, in the border or the batch, naming which', () => {
    expect(thrown(() => appendLeaves({ size: 1, nodes: [leaves[0]!.subarray(0, 31)] }, []))).toMatchObject({
      problem: 'not-a-hash',
      message: 'border node 0 is not a 32-byte SHA-256 hash',
    });
    const batch = [leaves[0]!, Buffer.concat([leaves[1]!, Buffer.from([0])])];
    const error = thrown(() => appendLeaves(EMPTY_BORDER, batch));
    expect(error).toBeInstanceOf(MerkleNodeError);
    expect(error).toMatchObject({ problem: 'not-a-hash', message: 'leaf hash 1 of the batch is not a 32-byte SHA-256 hash' });
    expect(thrown(() => appendLeaves(EMPTY_BORDER, ['ab'.repeat(32) as unknown as Buffer]))).toMatchObject({ problem: 'not-a-hash' });
  });

  it('refuses a border size that is not a non-negative safe integer', () => {
    for (const size of [-1, 0.5, Number.NaN]) {
      const error = thrown(() => appendLeaves({ size, nodes: [] }, []));
      expect(error).toBeInstanceOf(MerkleRangeError);
      expect(error).toMatchObject({ problem: 'not-a-size' });
    }
  });
});

describe('rootOfBorder', () => {
  it('is the empty tree root for the empty border, as a copy', () => {
    const root = rootOfBorder(EMPTY_BORDER);
    expect(root).toEqual(EMPTY_TREE_ROOT);
    expect(root).not.toBe(EMPTY_TREE_ROOT);
  });
});
