import { Prng } from '../../../../test/support/fuzz';
import { MerkleNodeError, MerkleProofError, MerkleRangeError } from './merkle-errors';
import { EMPTY_TREE_ROOT, leafHash, nodeHash, rootOfLeafHashes } from './merkle-hash';
import { assembleProof, consistencyProofRanges, inclusionProofRanges, nodeIdsFor } from './proof-ranges';
import { rootFromInclusionProof, verifyConsistency, verifyInclusion } from './proof-verify';
import { appendLeaves, borderIds, type TreeBorder } from './tree-append';
import { type LeafRange, nodeKey, nodeRange, perfectSubtrees } from './tree-range';

const MAX = 70;
const leaves = Array.from({ length: MAX }, (_, i) => leafHash(Buffer.from(`audit record ${i}`)));

/*
 * The reference: PATH and PROOF written as RFC 9162 §2.1.3.1 and §2.1.4.1 define them, over the leaf
 * list itself, with rootOfLeafHashes as MTH. Nothing of the node store or the range code.
 */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) {
    k *= 2;
  }
  return k;
}

const mthMemo = new Map<string, Buffer>();
/** MTH(D[begin:end]) by rootOfLeafHashes, remembered: the reference proofs ask for the same ranges often. */
function mth(begin: number, end: number): Buffer {
  const key = `${begin}-${end}`;
  let hash = mthMemo.get(key);
  if (hash === undefined) {
    hash = rootOfLeafHashes(leaves.slice(begin, end));
    mthMemo.set(key, hash);
  }
  return hash;
}

/** PATH(m, D[begin:end]), m relative to begin. */
function referencePath(m: number, begin: number, end: number): Buffer[] {
  if (end - begin <= 1) {
    return [];
  }
  const k = split(end - begin);
  return m < k
    ? [...referencePath(m, begin, begin + k), mth(begin + k, end)]
    : [...referencePath(m - k, begin + k, end), mth(begin, begin + k)];
}

/** SUBPROOF(m, D[begin:end], b), m relative to begin. */
function referenceSubproof(m: number, begin: number, end: number, b: boolean): Buffer[] {
  if (m === end - begin) {
    return b ? [] : [mth(begin, end)];
  }
  const k = split(end - begin);
  return m <= k
    ? [...referenceSubproof(m, begin, begin + k, b), mth(begin + k, end)]
    : [...referenceSubproof(m - k, begin + k, end, false), mth(begin, begin + k)];
}

const hexes = (hashes: readonly Buffer[]): string => hashes.map((h) => h.toString('hex')).join(',');

/** The node store after appending all leaves in random batches, as the sequencer writes it. */
function buildStore(rng: Prng): Map<string, Buffer> {
  const store = new Map<string, Buffer>();
  for (let size = 0; size < MAX; ) {
    const n = Math.min(MAX - size, 1 + rng.below(7));
    const border: TreeBorder = { size, nodes: borderIds(size).map((id) => store.get(nodeKey(id))!) };
    for (const node of appendLeaves(border, leaves.slice(size, size + n)).newNodes) {
      store.set(nodeKey(node), node.hash);
    }
    size += n;
  }
  return store;
}

/** What the table held when the tree had `size` leaves: the nodes complete by then. */
function storeAt(store: ReadonlyMap<string, Buffer>, size: number): Map<string, Buffer> {
  return new Map(
    [...store].filter(([key]) => {
      const [level, index] = key.split('/').map(Number);
      return nodeRange({ level: level!, index: index! })[1] <= size;
    }),
  );
}

/** The proof as the proof routes build it: the ranges' node ids, one load, one assembly. */
function proofFromStore(ranges: readonly LeafRange[], store: ReadonlyMap<string, Buffer>): Buffer[] {
  const loaded = new Map(nodeIdsFor(ranges).flatMap((id) => (store.has(nodeKey(id)) ? [[nodeKey(id), store.get(nodeKey(id))!] as const] : [])));
  return assembleProof(ranges, loaded);
}

function problemOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof MerkleProofError) {
      return error.problem;
    }
    throw error;
  }
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal');
}

function flipBit(hash: Buffer, bit: number): Buffer {
  const copy = Buffer.from(hash);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

const rng = new Prng(0x9162);
const store = buildStore(rng);
const roots = Array.from({ length: MAX + 1 }, (_, size) => rootOfLeafHashes(leaves.slice(0, size)));
const OTHER = leafHash(Buffer.from('not in the log'));

describe('inclusion proofs, every leaf of every tree of 1..70 leaves', () => {
  it('are built from the node store as RFC 9162 §2.1.3.1 defines them, and verify', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (let size = 1; size <= MAX; size++) {
      const at = storeAt(store, size);
      for (let index = 0; index < size; index++) {
        const proof = proofFromStore(inclusionProofRanges(index, size), at);
        if (hexes(proof) !== hexes(referencePath(index, 0, size))) {
          wrong.push(`leaf ${index} of ${size}: not PATH`);
        }
        if (!rootFromInclusionProof(leaves[index]!, index, size, proof).equals(roots[size]!)) {
          wrong.push(`leaf ${index} of ${size}: not the root`);
        }
        verifyInclusion(leaves[index]!, index, size, proof, roots[size]!);
        checked++;
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });

  it('are refused with another index, a size twice or half as large, a flipped bit anywhere, or an element removed or added', () => {
    const accepted: string[] = [];
    const wrongProblem: string[] = [];
    let probes = 0;
    const expectRefusal = (name: string, problem: string | readonly string[], run: () => void): void => {
      probes++;
      const got = problemOf(run);
      if (got === undefined) {
        accepted.push(name);
      } else if (!(Array.isArray(problem) ? problem : [problem]).includes(got)) {
        wrongProblem.push(`${name}: ${got}`);
      }
    };
    for (let size = 1; size <= MAX; size++) {
      const root = roots[size]!;
      for (let index = 0; index < size; index++) {
        const leaf = leaves[index]!;
        const proof = referencePath(index, 0, size);
        const at = `leaf ${index} of ${size}`;
        // Every other index for the smaller trees; the neighbours, the bit-1/bit-2 twins and the ends for the others.
        const others = size <= 24 ? Array.from({ length: size + 1 }, (_, i) => i) : [index - 1, index + 1, index ^ 1, index ^ 2, 0, size - 1, size];
        for (const other of others) {
          if (other !== index && other >= 0) {
            expectRefusal(`${at} as leaf ${other}`, ['root-mismatch', 'proof-length', 'index-out-of-range'], () => verifyInclusion(leaf, other, size, proof, root));
          }
        }
        expectRefusal(`${at} in ${size * 2}`, ['root-mismatch', 'proof-length'], () => verifyInclusion(leaf, index, size * 2, proof, root));
        expectRefusal(`${at} in ${Math.floor(size / 2)}`, ['root-mismatch', 'proof-length', 'index-out-of-range'], () =>
          verifyInclusion(leaf, index, Math.floor(size / 2), proof, root),
        );
        expectRefusal(`${at} another leaf`, 'root-mismatch', () => verifyInclusion(OTHER, index, size, proof, root));
        expectRefusal(`${at} another root`, 'root-mismatch', () => verifyInclusion(leaf, index, size, proof, roots[size - 1]!));
        // Every bit for the smallest trees, one random bit of each hash for the others.
        const bits = size <= 4 ? Array.from({ length: 256 }, (_, b) => b) : [rng.below(256)];
        for (const bit of bits) {
          expectRefusal(`${at} leaf bit ${bit}`, 'root-mismatch', () => verifyInclusion(flipBit(leaf, bit), index, size, proof, root));
          expectRefusal(`${at} root bit ${bit}`, 'root-mismatch', () => verifyInclusion(leaf, index, size, proof, flipBit(root, bit)));
          proof.forEach((_, i) =>
            expectRefusal(`${at} proof[${i}] bit ${bit}`, 'root-mismatch', () =>
              verifyInclusion(leaf, index, size, proof.map((h, j) => (j === i ? flipBit(h, bit) : h)), root),
            ),
          );
        }
        if (proof.length > 0) {
          expectRefusal(`${at} truncated`, 'proof-length', () => verifyInclusion(leaf, index, size, proof.slice(0, -1), root));
          expectRefusal(`${at} without its first`, 'proof-length', () => verifyInclusion(leaf, index, size, proof.slice(1), root));
        }
        expectRefusal(`${at} extended`, 'proof-length', () => verifyInclusion(leaf, index, size, [...proof, root], root));
        expectRefusal(`${at} prefixed`, 'proof-length', () => verifyInclusion(leaf, index, size, [OTHER, ...proof], root));
      }
    }
    expect(accepted).toEqual([]);
    expect(wrongProblem).toEqual([]);
    expect(probes).toBeGreaterThan(50_000);
  });
});

describe('consistency proofs, between every pair of trees of 1..70 leaves', () => {
  it('are built from the node store as RFC 9162 §2.1.4.1 defines them, and verify', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (let size2 = 1; size2 <= MAX; size2++) {
      const at = storeAt(store, size2);
      for (let size1 = 1; size1 <= size2; size1++) {
        const proof = proofFromStore(consistencyProofRanges(size1, size2), at);
        if (hexes(proof) !== hexes(referenceSubproof(size1, 0, size2, true))) {
          wrong.push(`${size1} to ${size2}: not PROOF`);
        }
        verifyConsistency(size1, size2, proof, roots[size1]!, roots[size2]!);
        checked++;
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe((MAX * (MAX + 1)) / 2);
  });

  it('are refused with another first size, a second size twice or half as large, other roots, a flipped bit, or an element removed or added', () => {
    const accepted: string[] = [];
    const wrongProblem: string[] = [];
    let probes = 0;
    const expectRefusal = (name: string, problem: string | readonly string[], run: () => void): void => {
      probes++;
      const got = problemOf(run);
      if (got === undefined) {
        accepted.push(name);
      } else if (!(Array.isArray(problem) ? problem : [problem]).includes(got)) {
        wrongProblem.push(`${name}: ${got}`);
      }
    };
    const anyMismatch = ['root-mismatch', 'first-root-mismatch', 'proof-length', 'sizes-out-of-order'];
    // A first tree of 2^k leaves is a node of the second: its root is the proof's first element
    // (RFC 9162 §2.1.4.2 step 2), so a wrong first root shows as a wrong second root.
    const rootMismatch = ['root-mismatch', 'first-root-mismatch'];
    for (let size2 = 2; size2 <= MAX; size2++) {
      for (let size1 = 1; size1 < size2; size1++) {
        const proof = referenceSubproof(size1, 0, size2, true);
        const [root1, root2] = [roots[size1]!, roots[size2]!];
        const at = `${size1} to ${size2}`;
        const others = size2 <= 24 ? Array.from({ length: size2 + 1 }, (_, i) => i) : [size1 - 1, size1 + 1, size1 ^ 1, size1 ^ 2, 0, size2 - 1, size2];
        for (const other of others) {
          if (other !== size1) {
            expectRefusal(`${at} from ${other}`, anyMismatch, () => verifyConsistency(other, size2, proof, root1, root2));
          }
        }
        expectRefusal(`${at} to ${size2 * 2}`, anyMismatch, () => verifyConsistency(size1, size2 * 2, proof, root1, root2));
        expectRefusal(`${at} to ${Math.floor(size2 / 2)}`, anyMismatch, () => verifyConsistency(size1, Math.floor(size2 / 2), proof, root1, root2));
        expectRefusal(`${at} other root1`, rootMismatch, () => verifyConsistency(size1, size2, proof, roots[size1 - 1]!, root2));
        expectRefusal(`${at} other root2`, 'root-mismatch', () => verifyConsistency(size1, size2, proof, root1, roots[size2 - 1]!));
        expectRefusal(`${at} swapped roots`, ['root-mismatch', 'first-root-mismatch'], () => verifyConsistency(size1, size2, proof, root2, root1));
        const bits = size2 <= 4 ? Array.from({ length: 256 }, (_, b) => b) : [rng.below(256)];
        for (const bit of bits) {
          expectRefusal(`${at} root1 bit ${bit}`, rootMismatch, () => verifyConsistency(size1, size2, proof, flipBit(root1, bit), root2));
          expectRefusal(`${at} root2 bit ${bit}`, 'root-mismatch', () => verifyConsistency(size1, size2, proof, root1, flipBit(root2, bit)));
          proof.forEach((_, i) =>
            expectRefusal(`${at} proof[${i}] bit ${bit}`, ['root-mismatch', 'first-root-mismatch'], () =>
              verifyConsistency(size1, size2, proof.map((h, j) => (j === i ? flipBit(h, bit) : h)), root1, root2),
            ),
          );
        }
        expectRefusal(`${at} empty`, 'proof-length', () => verifyConsistency(size1, size2, [], root1, root2));
        expectRefusal(`${at} truncated`, 'proof-length', () => verifyConsistency(size1, size2, proof.slice(0, -1), root1, root2));
        expectRefusal(`${at} without its first`, 'proof-length', () => verifyConsistency(size1, size2, proof.slice(1), root1, root2));
        expectRefusal(`${at} extended`, 'proof-length', () => verifyConsistency(size1, size2, [...proof, root2], root1, root2));
        expectRefusal(`${at} prefixed`, 'proof-length', () => verifyConsistency(size1, size2, [root1, ...proof], root1, root2));
      }
    }
    expect(accepted).toEqual([]);
    expect(wrongProblem).toEqual([]);
    expect(probes).toBeGreaterThan(50_000);
  });

  it('between equal sizes take an empty proof and equal roots', () => {
    verifyConsistency(5, 5, [], roots[5]!, roots[5]!);
    expect(consistencyProofRanges(5, 5)).toEqual([]);
    expect(problemOf(() => verifyConsistency(5, 5, [], roots[5]!, roots[4]!))).toBe('root-mismatch');
    expect(problemOf(() => verifyConsistency(5, 5, [roots[5]!], roots[5]!, roots[5]!))).toBe('proof-length');
  });

  it('from the empty tree take an empty proof and the empty tree root', () => {
    verifyConsistency(0, 7, [], EMPTY_TREE_ROOT, roots[7]!);
    verifyConsistency(0, 0, [], EMPTY_TREE_ROOT, EMPTY_TREE_ROOT);
    expect(problemOf(() => verifyConsistency(0, 7, [], roots[1]!, roots[7]!))).toBe('first-root-mismatch');
    expect(problemOf(() => verifyConsistency(0, 7, [roots[7]!], EMPTY_TREE_ROOT, roots[7]!))).toBe('proof-length');
  });
});

describe('proofs of trees near 2^53 leaves', () => {
  // A tree whose leaves are all the same hash: every perfect subtree at level L has the same hash, so
  // real proofs and roots of any size take O(log n) hashes, and the number arithmetic is what is tested.
  const levels = [leaves[0]!];
  for (let l = 1; l <= 53; l++) {
    levels.push(nodeHash(levels[l - 1]!, levels[l - 1]!));
  }
  const nodes = new Proxy(new Map<string, Buffer>(), {
    get: (target, prop) => (prop === 'get' ? (key: string) => levels[Number(key.split('/')[0])] : Reflect.get(target, prop)),
  });
  const rootOf = (size: number): Buffer => assembleProof([[0, size]], nodes)[0]!;
  const sizes = [2 ** 52, 2 ** 52 + 1, 2 ** 53 - 2, Number.MAX_SAFE_INTEGER, 2 ** 40 + 12345, 3 * 2 ** 50 + 7];

  it('verify inclusion of the first, a middle and the last leaf', () => {
    for (const size of sizes) {
      for (const index of [0, Math.floor(size / 3), size - 2, size - 1]) {
        const proof = assembleProof(inclusionProofRanges(index, size), nodes);
        verifyInclusion(levels[0]!, index, size, proof, rootOf(size));
        expect(problemOf(() => verifyInclusion(levels[0]!, index, size, proof, rootOf(size - 1)))).toBe('root-mismatch');
      }
    }
  });

  it('verify consistency between sizes far apart and next to each other', () => {
    for (const size2 of sizes) {
      for (const size1 of [1, 2 ** 20 + 3, Math.floor(size2 / 2) + 1, size2 - 1]) {
        const proof = assembleProof(consistencyProofRanges(size1, size2), nodes);
        verifyConsistency(size1, size2, proof, rootOf(size1), rootOf(size2));
        expect(problemOf(() => verifyConsistency(size1, size2, proof, rootOf(size1), rootOf(size2 - 1)))).not.toBeUndefined();
      }
    }
  });
});

describe('proof ranges', () => {
  it('decompose into stored nodes, and nodeIdsFor lists each node once', () => {
    const ranges = [...inclusionProofRanges(0, 8), ...consistencyProofRanges(1, 8)];
    expect(ranges).toEqual([
      [1, 2],
      [2, 4],
      [4, 8],
      [1, 2],
      [2, 4],
      [4, 8],
    ]);
    expect(nodeIdsFor(ranges)).toEqual([
      { level: 0, index: 1 },
      { level: 1, index: 1 },
      { level: 2, index: 1 },
    ]);
    expect(inclusionProofRanges(12, 13)).toEqual([[0, 8], [8, 12]].reverse());
    expect(nodeIdsFor(consistencyProofRanges(6, 13))).toEqual([
      ...perfectSubtrees(4, 6),
      ...perfectSubtrees(6, 8),
      ...perfectSubtrees(0, 4),
      ...perfectSubtrees(8, 13),
    ]);
  });

  it('need at most one range that is not a perfect subtree (the one on the right border), so at most 2·log2(n) stored nodes', () => {
    for (let size = 1; size <= MAX; size++) {
      const limit = 2 * Math.ceil(Math.log2(size));
      const shapes = [
        ...Array.from({ length: size }, (_, index) => inclusionProofRanges(index, size)),
        ...Array.from({ length: size }, (_, i) => consistencyProofRanges(i + 1, size)),
      ];
      for (const ranges of shapes) {
        const composite = ranges.filter(([begin, end]) => perfectSubtrees(begin, end).length > 1);
        expect({ size, ranges, composite: composite.length <= 1, small: nodeIdsFor(ranges).length <= limit }).toEqual({
          size,
          ranges,
          composite: true,
          small: true,
        });
      }
    }
  });

  it('refuse a leaf that is not in the tree, and sizes out of order, naming them', () => {
    const cases: Array<[() => unknown, string, string]> = [
      [() => inclusionProofRanges(5, 5), 'index-out-of-range', 'leaf 5 is not in a tree of 5 leaves'],
      [() => inclusionProofRanges(0, 0), 'index-out-of-range', 'leaf 0 is not in a tree of 0 leaves'],
      [() => consistencyProofRanges(6, 5), 'sizes-out-of-order', 'a tree of 5 leaves cannot extend one of 6'],
      [() => consistencyProofRanges(0, 5), 'empty-tree', 'there is no consistency proof from the empty tree'],
      [() => inclusionProofRanges(-1, 5), 'not-a-size', 'leaf index must be a non-negative integer below 2^53, not -1'],
      [() => inclusionProofRanges(0, 2 ** 53), 'not-a-size', `tree size must be a non-negative integer below 2^53, not ${2 ** 53}`],
      [() => consistencyProofRanges(1.5, 5), 'not-a-size', 'first tree size must be a non-negative integer below 2^53, not 1.5'],
    ];
    for (const [run, problem, message] of cases) {
      const error = thrown(run);
      expect(error).toBeInstanceOf(MerkleRangeError);
      expect(error).toMatchObject({ problem, message });
    }
  });

  it('assembleProof refuses a node it was not given, naming it', () => {
    const ranges = inclusionProofRanges(3, 13);
    const partial = storeAt(store, 13);
    partial.delete('2/2');
    const error = thrown(() => assembleProof(ranges, partial));
    expect(error).toBeInstanceOf(MerkleNodeError);
    expect(error).toMatchObject({ problem: 'missing-node', message: 'node 2/2, needed for leaves [8, 13), was not given' });
  });
});

describe('verifiers', () => {
  it('refuse hashes that are not 32 bytes and sizes that are not integers, naming them', () => {
    const proof = referencePath(2, 0, 5);
    const cases: Array<[() => unknown, string, string]> = [
      [() => verifyInclusion(leaves[2]!.subarray(1), 2, 5, proof, roots[5]!), 'not-a-hash', 'the leaf hash is not a 32-byte SHA-256 hash'],
      [() => verifyInclusion(leaves[2]!, 2, 5, proof, Buffer.alloc(0)), 'not-a-hash', 'the root is not a 32-byte SHA-256 hash'],
      [() => verifyInclusion(leaves[2]!, 2, 5, [proof[0]!, Buffer.alloc(33)], roots[5]!), 'not-a-hash', 'inclusion proof element 1 is not a 32-byte SHA-256 hash'],
      [() => verifyInclusion(leaves[2]!, 2, Number.NaN, proof, roots[5]!), 'not-a-size', 'tree size must be a non-negative integer below 2^53, not NaN'],
      [() => verifyInclusion(leaves[2]!, 5, 5, proof, roots[5]!), 'index-out-of-range', 'leaf 5 is not in a tree of 5 leaves'],
      [() => verifyConsistency(3, 2, [], roots[3]!, roots[2]!), 'sizes-out-of-order', 'a tree of 2 leaves cannot extend one of 3'],
      [() => verifyConsistency(-3, 2, [], roots[3]!, roots[2]!), 'not-a-size', 'first tree size must be a non-negative integer below 2^53, not -3'],
      [() => verifyConsistency(2, 3, [Buffer.alloc(31)], roots[2]!, roots[3]!), 'not-a-hash', 'consistency proof element 0 is not a 32-byte SHA-256 hash'],
      [() => verifyConsistency(2, 3, [roots[2]!], roots[2]!, 'x' as unknown as Buffer), 'not-a-hash', 'the second root is not a 32-byte SHA-256 hash'],
      [() => verifyInclusion(leaves[2]!, 2, 5, proof.slice(1), roots[5]!), 'proof-length', 'a inclusion proof of 2 hashes does not fit leaf 2 of 5'],
    ];
    for (const [run, problem, message] of cases) {
      const error = thrown(run);
      expect(error).toBeInstanceOf(MerkleProofError);
      expect(error).toMatchObject({ problem, message });
    }
  });
});
