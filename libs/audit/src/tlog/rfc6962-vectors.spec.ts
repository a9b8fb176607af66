import {
  EMPTY_TREE_ROOT,
  MerkleProofError,
  appendLeaves,
  assembleProof,
  consistencyProofRanges,
  EMPTY_BORDER,
  inclusionProofRanges,
  leafHash,
  nodeHash,
  nodeIdsFor,
  nodeKey,
  rootFromInclusionProof,
  rootOfLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from './index';

/*
 * Published test vectors of the RFC 6962 tree (RFC 9162 §2.1 keeps the same hashing and proofs), copied
 * as numbers from github.com/transparency-dev/merkle at commit 02194e9afb6c1d95b5381350007963aa70fff472,
 * licence Apache-2.0: the leaves, roots, inclusion and consistency proofs of `proof/verify_test.go`
 * (`leaves`, `roots`, `inclusionProofs`, `consistencyProofs`; its leaf numbers there are 1-based, here
 * 0-based), and the hasher vectors of `rfc6962/rfc6962_test.go` (at 78493b07ef9b552e3379abf9e23d4da26fbe797c).
 */
const hex = (h: string): Buffer => Buffer.from(h, 'hex');

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hex);

/** Roots of the trees of the first 1..8 leaves. */
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);

const INCLUSION: ReadonlyArray<{ index: number; size: number; proof: string[] }> = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

const CONSISTENCY: ReadonlyArray<{ size1: number; size2: number; proof: string[] }> = [
  { size1: 1, size2: 1, proof: [] },
  {
    size1: 1,
    size2: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

/** Some hash that is no node of these trees (the vectors' own "some hash"). */
const SOME_HASH = hex('abacaba000000000000000000000000000000000000000000060061e00123456');

const leafHashes = LEAVES.map(leafHash);

/** The node store after appending the 8 leaves, as the sequencer would have written it. */
const store = new Map(appendLeaves(EMPTY_BORDER, leafHashes).newNodes.map((n) => [nodeKey(n), n.hash] as const));

function flipBit(hash: Buffer, bit: number): Buffer {
  const copy = Buffer.from(hash);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('RFC 6962 test vectors (transparency-dev/merkle)', () => {
  it('hashes as the vectors do: the empty tree, an empty leaf, a leaf, a node', () => {
    expect(EMPTY_TREE_ROOT.toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(leafHash(Buffer.alloc(0)).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(leafHash(Buffer.from('L123456')).toString('hex')).toBe('395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56');
    expect(nodeHash(Buffer.from('N123'), Buffer.from('N456')).toString('hex')).toBe(
      'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
    );
    expect(rootOfLeafHashes([])).toEqual(EMPTY_TREE_ROOT);
  });

  it('computes the published roots of the first 1..8 leaves, by definition and by appending one leaf at a time', () => {
    let border = EMPTY_BORDER;
    for (let size = 1; size <= 8; size++) {
      expect(rootOfLeafHashes(leafHashes.slice(0, size))).toEqual(ROOTS[size - 1]);
      const appended = appendLeaves(border, [leafHashes[size - 1]!]);
      expect(appended.root).toEqual(ROOTS[size - 1]);
      border = appended.border;
    }
  });

  it.each(INCLUSION)('builds the published inclusion proof of leaf $index in $size from the node store, and verifies it', ({ index, size, proof }) => {
    const ranges = inclusionProofRanges(index, size);
    const built = assembleProof(ranges, new Map(nodeIdsFor(ranges).map((id) => [nodeKey(id), store.get(nodeKey(id))!])));
    expect(built.map((h) => h.toString('hex'))).toEqual(proof);
    expect(rootFromInclusionProof(leafHashes[index]!, index, size, built)).toEqual(ROOTS[size - 1]);
    expect(() => verifyInclusion(leafHashes[index]!, index, size, built, ROOTS[size - 1]!)).not.toThrow();
  });

  it.each(CONSISTENCY)('builds the published consistency proof from $size1 to $size2 from the node store, and verifies it', ({ size1, size2, proof }) => {
    const built = assembleProof(consistencyProofRanges(size1, size2), store);
    expect(built.map((h) => h.toString('hex'))).toEqual(proof);
    expect(() => verifyConsistency(size1, size2, built, ROOTS[size1 - 1]!, ROOTS[size2 - 1]!)).not.toThrow();
  });

  it.each(INCLUSION.filter((v) => v.proof.length > 0))(
    'refuses the inclusion proof of leaf $index in $size with a wrong index, size, leaf, root or proof',
    ({ index, size, proof: hexProof }) => {
      const proof = hexProof.map(hex);
      const leaf = leafHashes[index]!;
      const root = ROOTS[size - 1]!;
      const probes: Array<[string, () => void]> = [
        ['index - 1', () => verifyInclusion(leaf, index - 1, size, proof, root)],
        ['index + 1', () => verifyInclusion(leaf, index + 1, size, proof, root)],
        ['index ^ 2', () => verifyInclusion(leaf, index ^ 2, size, proof, root)],
        ['size * 2', () => verifyInclusion(leaf, index, size * 2, proof, root)],
        ['size / 2', () => verifyInclusion(leaf, index, Math.floor(size / 2), proof, root)],
        ['wrong leaf', () => verifyInclusion(leafHash(Buffer.from('WrongLeaf')), index, size, proof, root)],
        ['empty tree root', () => verifyInclusion(leaf, index, size, proof, EMPTY_TREE_ROOT)],
        ['some root', () => verifyInclusion(leaf, index, size, proof, SOME_HASH)],
        ['trailing root', () => verifyInclusion(leaf, index, size, [...proof, root], root)],
        ['preceding root', () => verifyInclusion(leaf, index, size, [root, ...proof], root)],
        ['removed element', () => verifyInclusion(leaf, index, size, proof.slice(0, -1), root)],
        ['inserted element', () => verifyInclusion(leaf, index, size, [proof[0]!, SOME_HASH, ...proof.slice(1)], root)],
        ...proof.map((_, i): [string, () => void] => [
          `proof[${i}] bit 3 flipped`,
          () => verifyInclusion(leaf, index, size, proof.map((h, j) => (j === i ? flipBit(h, 3) : h)), root),
        ]),
      ];
      for (const [name, probe] of probes) {
        expect({ name, error: errorOf(probe) }).toEqual({ name, error: expect.any(MerkleProofError) });
      }
    },
  );

  it.each(CONSISTENCY.filter((v) => v.proof.length > 0))(
    'refuses the consistency proof from $size1 to $size2 with a wrong size, root or proof',
    ({ size1, size2, proof: hexProof }) => {
      const proof = hexProof.map(hex);
      const root1 = ROOTS[size1 - 1]!;
      const root2 = ROOTS[size2 - 1]!;
      const probes: Array<[string, () => void]> = [
        ['size1 - 1', () => verifyConsistency(size1 - 1, size2, proof, root1, root2)],
        ['size1 + 1', () => verifyConsistency(size1 + 1, size2, proof, root1, root2)],
        ['size1 ^ 2', () => verifyConsistency(size1 ^ 2, size2, proof, root1, root2)],
        ['size2 * 2', () => verifyConsistency(size1, size2 * 2, proof, root1, root2)],
        ['size2 / 2', () => verifyConsistency(size1, Math.floor(size2 / 2), proof, root1, root2)],
        ['wrong root1', () => verifyConsistency(size1, size2, proof, SOME_HASH, root2)],
        ['wrong root2', () => verifyConsistency(size1, size2, proof, root1, SOME_HASH)],
        ['swapped roots', () => verifyConsistency(size1, size2, proof, root2, root1)],
        ['empty proof', () => verifyConsistency(size1, size2, [], root1, root2)],
        ['trailing root1', () => verifyConsistency(size1, size2, [...proof, root1], root1, root2)],
        ['trailing root2', () => verifyConsistency(size1, size2, [...proof, root2], root1, root2)],
        ['preceding root1', () => verifyConsistency(size1, size2, [root1, ...proof], root1, root2)],
        ['preceding root2', () => verifyConsistency(size1, size2, [root2, ...proof], root1, root2)],
        ['preceding proof[0]', () => verifyConsistency(size1, size2, [proof[0]!, ...proof], root1, root2)],
        ['truncated proof', () => verifyConsistency(size1, size2, proof.slice(0, -1), root1, root2)],
        ...proof.map((_, i): [string, () => void] => [
          `proof[${i}] bit 4 flipped`,
          () => verifyConsistency(size1, size2, proof.map((h, j) => (j === i ? flipBit(h, 4) : h)), root1, root2),
        ]),
      ];
      for (const [name, probe] of probes) {
        expect({ name, error: errorOf(probe) }).toEqual({ name, error: expect.any(MerkleProofError) });
      }
    },
  );
});

function errorOf(probe: () => void): unknown {
  try {
    probe();
    return undefined;
  } catch (error) {
    return error;
  }
}
