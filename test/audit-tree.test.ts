import {
  AuditLog,
  AuditSequencer,
  auditLeafBytes,
  CheckpointSigner,
  leafHash,
  openCheckpoint,
  recordedAtText,
  epochMicrosOf,
  verifyInclusion,
  type AuditEntry,
} from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { SystemClock } from '@rackseal/platform';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { asSuperuser, createTestDatabase, openDataSource, type TestDatabase } from './support/database';

const entry = (i: number): AuditEntry => ({ actor: 'system:test', action: 'test.event', subject: `machine:${i}`, outcome: 'success', details: { i } });

describe('audit transparency log (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let audit: AuditLog;
  let sequencer: AuditSequencer;
  const origin = 'rackseal.test/audit';

  beforeEach(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    audit = new AuditLog(ds, new SystemClock());
    const signer = new CheckpointSigner({ origin, masterKey: new SecretBytes(randomBytes(32)), signingKeySeed: null });
    sequencer = new AuditSequencer(ds, signer, new SystemClock(), { maxMergeDelayMs: 1000 }, { log: () => undefined, error: () => undefined });
  });

  afterEach(async () => {
    await sequencer.stop();
    await ds.destroy();
    await db.drop();
  });

  it('appends pending records, sequences them into a signed tree and proves inclusion', async () => {
    const appended = [];
    for (let i = 1; i <= 5; i += 1) {
      appended.push(await audit.append(entry(i)));
    }
    expect((await audit.list({ limit: 10 })).map((r) => r.seq)).toEqual([null, null, null, null, null]);
    expect(await sequencer.drainOnce()).toBe(true);
    const listed = await audit.list({ limit: 10 });
    expect(listed.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    const checkpoint = await audit.latestCheckpoint();
    expect(checkpoint.treeSize).toBe(5);
    const [key] = await audit.publicKeys();
    const opened = openCheckpoint(checkpoint.note, key!.verifierKey);
    expect(opened.size).toBe(5);
    const { proof, record } = await audit.inclusionProof(3);
    const leaf = leafHash(
      auditLeafBytes({ ...entry(3), seq: 3, recordedAt: recordedAtText(epochMicrosOf(appended[2]!.recordedAt))! }),
    );
    expect(record.leafHash).toEqual(leaf);
    expect(() => verifyInclusion(leaf, 2, 5, proof.proof, opened.rootHash)).not.toThrow();
    expect(await audit.verify()).toMatchObject({ ok: true, records: 5, pending: 0, checkpoints: 1 });
    await asSuperuser(ds, `UPDATE audit_log SET subject = 'forged' WHERE seq = 2`);
    expect(await audit.verify()).toMatchObject({ ok: false, problem: { kind: 'content-mismatch', seq: 2 } });
  });
});
