import { MerkleNodeError, MerkleRangeError } from './merkle-errors';
import { EMPTY_TREE_ROOT, leafHash, rootOfLeafHashes } from './merkle-hash';
import { foldRange, type LeafRange, nodeKey, nodeRange, perfectSubtrees } from './tree-range';

const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

/** Every node of the RFC 9162 §2.1.1 tree over [begin, end): the range itself and both halves' nodes. */
function rfcTreeNodes(begin: number, end: number): LeafRange[] {
  if (end - begin <= 1) {
    return [[begin, end]];
  }
  let k = 1;
  while (k * 2 < end - begin) {
    k *= 2;
  }
  return [[begin, end], ...rfcTreeNodes(begin, begin + k), ...rfcTreeNodes(begin + k, end)];
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

describe('perfectSubtrees', () => {
  it('decomposes a tree into one perfect subtree per set bit of its size, largest first', () => {
    expect(perfectSubtrees(0, 13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(perfectSubtrees(8, 13)).toEqual([
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(perfectSubtrees(4, 8)).toEqual([{ level: 2, index: 1 }]);
    expect(perfectSubtrees(7, 8)).toEqual([{ level: 0, index: 7 }]);
    expect(perfectSubtrees(0, 0)).toEqual([]);
  });

  it('names exactly the leaves of the range, and folds into its MTH, for every node of every tree up to 40 leaves', () => {
    for (let size = 1; size <= 40; size++) {
      for (const [begin, end] of rfcTreeNodes(0, size)) {
        const ids = perfectSubtrees(begin, end);
        const covered = ids.map(nodeRange);
        expect(covered[0]![0]).toBe(begin);
        expect(covered[covered.length - 1]![1]).toBe(end);
        covered.slice(1).forEach(([b], i) => expect(b).toBe(covered[i]![1]));
        const hashes = ids.map((id) => rootOfLeafHashes(leaves.slice(...nodeRange(id))));
        expect(foldRange(hashes)).toEqual(rootOfLeafHashes(leaves.slice(begin, end)));
      }
    }
  });

  it('folds every range it accepts into that range\'s MTH, and refuses the others (all ranges of 40 leaves)', () => {
    let refused = 0;
    for (let begin = 0; begin < 40; begin++) {
      for (let end = begin + 1; end <= 40; end++) {
        let ids;
        try {
          ids = perfectSubtrees(begin, end);
        } catch (error) {
          expect(error).toBeInstanceOf(MerkleRangeError);
          expect((error as MerkleRangeError).problem).toBe('unaligned-range');
          refused++;
          continue;
        }
        const hashes = ids.map((id) => rootOfLeafHashes(leaves.slice(...nodeRange(id))));
        expect({ begin, end, root: foldRange(hashes) }).toEqual({ begin, end, root: rootOfLeafHashes(leaves.slice(begin, end)) });
      }
    }
    expect(refused).toBeGreaterThan(0);
  });

  it('is exact up to 2^53 − 1 leaves', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const ids = perfectSubtrees(0, max);
    expect(ids).toHaveLength(53);
    expect(ids[0]).toEqual({ level: 52, index: 0 });
    expect(ids[52]).toEqual({ level: 0, index: max - 1 });
    expect(nodeRange(ids[51]!)).toEqual([max - 3, max - 1]);
    expect(perfectSubtrees(2 ** 52, max)[0]).toEqual({ level: 51, index: 2 });
  });

  it('refuses a range whose MTH splits elsewhere than its perfect subtrees would, names it, and says why', () => {
    const cases: Array<[number, number, string, RegExp]> = [
      [1, 4, 'unaligned-range', /^leaf range \[1, 4\) does not start at a multiple of 2, the size of its left subtree$/],
      [3, 6, 'unaligned-range', /\[3, 6\) does not start at a multiple of 2/],
      [4, 12, 'unaligned-range', /\[4, 12\) does not start at a multiple of 8/],
      [3, 3, 'unaligned-range', /\[3, 3\) is empty/],
      [5, 3, 'sizes-out-of-order', /\[5, 3\) ends before it starts/],
    ];
    for (const [begin, end, problem, message] of cases) {
      const error = thrown(() => perfectSubtrees(begin, end));
      expect(error).toBeInstanceOf(MerkleRangeError);
      expect(error).toMatchObject({ problem, message: expect.stringMatching(message) });
    }
  });

  it('refuses sizes that are not non-negative safe integers', () => {
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '3' as unknown as number]) {
      const error = thrown(() => perfectSubtrees(0, bad));
      expect(error).toBeInstanceOf(MerkleRangeError);
      expect(error).toMatchObject({ problem: 'not-a-size', message: expect.stringContaining(`range end must be a non-negative integer below 2^53, not ${String(bad)}`) });
    }
    expect(thrown(() => perfectSubtrees(-2, 4))).toMatchObject({ problem: 'not-a-size', message: expect.stringContaining('range start') });
  });
});

describe('foldRange', () => {
  it('is the empty tree root for no hashes, and never hands out the constant itself', () => {
    const root = foldRange([]);
    expect(root).toEqual(EMPTY_TREE_ROOT);
    root[0] = root[0]! ^ 1;
    expect(EMPTY_TREE_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('refuses something that is not a 32-byte hash, naming which', () => {
    const error = thrown(() => foldRange([leaves[0]!, leaves[1]!.subarray(1)]));
    expect(error).toBeInstanceOf(MerkleNodeError);
    expect(error).toMatchObject({ problem: 'not-a-hash', message: 'subtree hash 1 is not a 32-byte SHA-256 hash' });
  });
});

describe('nodeKey', () => {
  it('is level/index', () => {
    expect(nodeKey({ level: 3, index: 12 })).toBe('3/12');
  });
});
