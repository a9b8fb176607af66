import {
  AuditError,
  AuditLog,
  auditLeafBytes,
  epochMicrosOf,
  leafHash,
  type ListedAuditRecord,
  MerkleProofError,
  openCheckpoint,
  recordedAtText,
  rootOfLeafHashes,
  type VerifiedCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type AuditEntry,
} from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { SystemClock } from '@rackseal/platform';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { testSequencer } from './support/audit-tree';
import { asSuperuser, createTestDatabase, openDataSource, type TestDatabase } from './support/database';

// Inclusion and consistency proofs of the audit tree (RFC 9162 §2.1.3, §2.1.4), served from the stored
// nodes and checked by the tlog verifiers against signed checkpoints and against a tree the test
// recomputes from the listed records alone.

const entry = (i: number): AuditEntry => ({
  actor: 'system:test',
  action: 'test.event',
  subject: `machine:${i}`,
  outcome: i % 5 === 0 ? 'refused' : 'success',
  details: { i, big: 9007199254740991, text: `é ${i}` },
});

/** Sizes the sequencer signs at: 1, a few unbalanced ones, a power of two, and the end. */
const SIGNED_SIZES = [1, 7, 16, 25, 41];

const refusedWith = (code: string) => expect.objectContaining({ code }) as unknown as AuditError;

describe('audit tree proofs (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let audit: AuditLog;
  let records: ListedAuditRecord[];
  /** Leaf hashes computed in the test from the listed records: seq, recordedAt (ms → text), content. */
  let leaves: Buffer[];
  const opened = new Map<number, VerifiedCheckpoint>();

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    audit = new AuditLog(ds, new SystemClock());
    const sequencer = testSequencer(ds, new SecretBytes(randomBytes(32)));
    await expect(audit.latestCheckpoint()).rejects.toThrow(refusedWith('audit.no-checkpoint'));
    let appended = 0;
    for (const size of SIGNED_SIZES) {
      for (; appended < size; appended += 1) {
        await audit.append(entry(appended + 1));
      }
      expect(await sequencer.drainOnce()).toBe(true);
    }
    await audit.append(entry(999));
    records = await audit.list({ limit: 100 });
    leaves = records
      .filter((r) => r.seq !== null)
      .map((r) =>
        leafHash(
          auditLeafBytes({
            seq: r.seq!,
            recordedAt: recordedAtText(epochMicrosOf(r.recordedAt))!,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            outcome: r.outcome,
            details: r.details,
          }),
        ),
      );
    const [key] = await audit.publicKeys();
    for (const size of SIGNED_SIZES) {
      const { proof } = await audit.inclusionProof(1, size);
      opened.set(size, openCheckpoint(proof.checkpoint.note, key!.verifierKey));
    }
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('signed one checkpoint per drain, each committing to the root the test recomputes', async () => {
    expect(records.map((r) => r.seq)).toEqual([...Array.from({ length: 41 }, (_, i) => i + 1), null]);
    expect((await audit.latestCheckpoint()).treeSize).toBe(41);
    for (const size of SIGNED_SIZES) {
      expect(opened.get(size)).toMatchObject({ origin: 'rackseal.test/audit', size, rootHash: rootOfLeafHashes(leaves.slice(0, size)) });
    }
    expect(await audit.verify()).toMatchObject({ ok: true, records: 41, pending: 1, checkpoints: SIGNED_SIZES.length });
  });

  it('proves every record in every signed tree that holds it', async () => {
    let proofs = 0;
    for (const size of SIGNED_SIZES) {
      const root = opened.get(size)!.rootHash;
      for (let seq = 1; seq <= size; seq += 1) {
        const { proof, record } = await audit.inclusionProof(seq, size);
        expect(record).toMatchObject({ seq, subject: `machine:${seq}` });
        expect(record.leafHash).toEqual(leaves[seq - 1]);
        expect(proof.treeSize).toBe(size);
        expect(() => verifyInclusion(leaves[seq - 1]!, seq - 1, size, proof.proof, root)).not.toThrow();
        // The same proof does not place the record anywhere else.
        if (size > 1) {
          const other = seq === 1 ? 1 : seq - 2;
          expect(() => verifyInclusion(leaves[seq - 1]!, other, size, proof.proof, root)).toThrow(MerkleProofError);
        }
        proofs += 1;
      }
    }
    expect(proofs).toBe(SIGNED_SIZES.reduce((a, b) => a + b, 0));
  });

  it('defaults to the latest checkpoint', async () => {
    const { proof } = await audit.inclusionProof(17);
    expect(proof.treeSize).toBe(41);
    expect(proof.checkpoint.treeSize).toBe(41);
    expect(() => verifyInclusion(leaves[16]!, 16, 41, proof.proof, opened.get(41)!.rootHash)).not.toThrow();
  });

  it('proves every tree size a prefix of every signed tree', async () => {
    for (const to of SIGNED_SIZES) {
      const root2 = opened.get(to)!.rootHash;
      for (let from = 1; from <= to; from += 1) {
        const proof = await audit.consistencyProof(from, to);
        expect(proof).toMatchObject({ from, to });
        const root1 = SIGNED_SIZES.includes(from) ? opened.get(from)!.rootHash : rootOfLeafHashes(leaves.slice(0, from));
        expect(() => verifyConsistency(from, to, proof.proof, root1, root2)).not.toThrow();
        if (from < to) {
          expect(() => verifyConsistency(from, to, proof.proof, rootOfLeafHashes(leaves.slice(1, from + 1)), root2)).toThrow(MerkleProofError);
        }
      }
    }
    const latest = await audit.consistencyProof(7);
    expect(latest.to).toBe(41);
    expect(() => verifyConsistency(7, 41, latest.proof, opened.get(7)!.rootHash, opened.get(41)!.rootHash)).not.toThrow();
  });

  it.each([
    ['an inclusion proof at a size never signed', () => audit.inclusionProof(1, 8), 'audit.no-checkpoint', 'no checkpoint was signed at tree size 8'],
    ['an inclusion proof of a pending record', () => audit.inclusionProof(42), 'audit.not-sequenced', 'record 42 is not in the tree of size 41'],
    ['an inclusion proof of a record beyond the signed size', () => audit.inclusionProof(8, 7), 'audit.not-sequenced', 'record 8 is not in the tree of size 7'],
    ['an inclusion proof of seq 0', () => audit.inclusionProof(0), 'audit.not-sequenced', 'record 0 is not in the tree'],
    ['a consistency proof to a size never signed', () => audit.consistencyProof(3, 30), 'audit.no-checkpoint', 'no checkpoint was signed at tree size 30'],
    ['a consistency proof from 0', () => audit.consistencyProof(0, 16), 'audit.invalid-size', 'from must be between 1 and 16'],
    ['a consistency proof from beyond its end', () => audit.consistencyProof(17, 16), 'audit.invalid-size', 'from must be between 1 and 16'],
  ])('refuses %s', async (_, call, code, message) => {
    const refusal = call();
    await expect(refusal).rejects.toBeInstanceOf(AuditError);
    await expect(refusal).rejects.toMatchObject({ code, message: expect.stringContaining(message) as never });
  });

  it('serves a proof that no longer verifies once a stored node it reads is edited', async () => {
    const before = await audit.inclusionProof(3, 16);
    expect(() => verifyInclusion(leaves[2]!, 2, 16, before.proof.proof, opened.get(16)!.rootHash)).not.toThrow();
    // Leaf 3's path in the tree of 16 reads the level-2 node of leaves 4..7 (index 1).
    await asSuperuser(ds, `UPDATE audit_tree_nodes SET hash = sha256('forged'::bytea) WHERE level = 2 AND idx = 1`);
    const after = await audit.inclusionProof(3, 16);
    expect(after.proof.proof).not.toEqual(before.proof.proof);
    expect(() => verifyInclusion(leaves[2]!, 2, 16, after.proof.proof, opened.get(16)!.rootHash)).toThrow(
      expect.objectContaining({ problem: 'root-mismatch' }) as never,
    );
    expect(await audit.verify()).toMatchObject({ ok: false, problem: { kind: 'node-mismatch' } });
  });
});
