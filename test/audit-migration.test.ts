import {
  AuditLog,
  auditLeafBytes,
  auditRecordHash,
  type AuditEntry,
  epochMicrosOf,
  GENESIS_HASH,
  LegacyChainBrokenError,
  leafHash,
  recordedAtText,
  rootOfLeafHashes,
  verifyAuditChain,
} from '@rackseal/audit';
import { loadConfig, SecretBytes } from '@rackseal/config';
import { dataSourceOptions, runMigrationsUnderLock } from '@rackseal/persistence';
import { SystemClock } from '@rackseal/platform';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import { logShape, testSequencer } from './support/audit-tree';
import { asSuperuser, createTestDatabase, type TestDatabase } from './support/database';

// A database written by the former hash chain keeps every record through the transparency-log
// migration: the sequencer verifies the chain once and makes its records the first leaves, in order;
// a broken chain is not integrated at all (issue 11).

const N = 12;
const BASE_MS = Date.UTC(2026, 10, 1, 8, 0, 0, 123);

const oldEntry = (i: number): AuditEntry => ({
  actor: 'operator:alice',
  action: 'machine.approved',
  subject: `machine:SN${i}`,
  outcome: i % 4 === 0 ? 'refused' : 'success',
  details: { i, big: 9007199254740991, reason: `old ${i}` },
});

/** The schema as it was before the transparency log: every migration up to MachineTransitions1764200000000. */
async function migrateToFormerChain(url: string): Promise<void> {
  const former = MIGRATIONS.slice(0, MIGRATIONS.findIndex((m) => m.name === 'AuditTransparencyLog1764300000000'));
  expect(former.at(-1)!.name).toBe('MachineTransitions1764200000000');
  const config = loadConfig({ RACKSEAL_ENV: 'test', DATABASE_URL: url });
  const ds = await new DataSource({ ...dataSourceOptions(config, 'rackseal-test'), migrations: former }).initialize();
  try {
    await runMigrationsUnderLock(ds);
  } finally {
    await ds.destroy();
  }
}

/** Appends `n` records the way the former AuditLog.append did: next seq, previous hash, chain head moved. */
async function writeFormerChain(ds: DataSource, n: number): Promise<{ recordedAt: string; hash: Buffer }[]> {
  const written: { recordedAt: string; hash: Buffer }[] = [];
  let prevHash: Buffer = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq += 1) {
    const recordedAt = recordedAtText(epochMicrosOf(new Date(BASE_MS + seq * 1001)))!;
    const hash = auditRecordHash(oldEntry(seq), seq, recordedAt, prevHash);
    const e = oldEntry(seq);
    await ds.transaction(async (m) => {
      await m.query(
        `INSERT INTO audit_log (seq, recorded_at, actor, action, subject, outcome, details, prev_hash, hash)
         VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
        [seq, recordedAt, e.actor, e.action, e.subject, e.outcome, JSON.stringify(e.details), prevHash, hash],
      );
      await m.query('UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1', [seq, hash]);
    });
    written.push({ recordedAt, hash });
    prevHash = hash;
  }
  return written;
}

describe('audit transparency-log migration of a former hash chain (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeEach(async () => {
    db = await createTestDatabase({ migrate: false });
    await migrateToFormerChain(db.url);
    // Migrations end at the one under test: later ones (e.g. MachineAttestationRecord1764400000000) are
    // not what migrateToTransparencyLog applies or undoLastMigration reverts.
    const upTo = MIGRATIONS.slice(0, MIGRATIONS.findIndex((m) => m.name === 'AuditTransparencyLog1764300000000') + 1);
    const config = loadConfig({ RACKSEAL_ENV: 'test', DATABASE_URL: db.url });
    ds = await new DataSource({ ...dataSourceOptions(config, 'rackseal-test'), migrations: upTo }).initialize();
  });

  afterEach(async () => {
    await ds.destroy();
    await db.drop();
  });

  async function migrateToTransparencyLog(): Promise<void> {
    expect((await runMigrationsUnderLock(ds)).applied).toEqual(['AuditTransparencyLog1764300000000']);
  }

  it('keeps every former record as leaves 1..N in chain order; new records follow; the tree verifies', async () => {
    const former = await writeFormerChain(ds, N);
    await migrateToTransparencyLog();
    const audit = new AuditLog(ds, new SystemClock());
    expect(await logShape(ds)).toEqual({ total: N, pending: 0, distinctSeqs: N, minSeq: 1, maxSeq: N });
    for (let i = 1; i <= 3; i += 1) {
      await audit.append({ actor: 'system:test', action: 'test.after', subject: `new:${i}`, outcome: 'success', details: { i } });
    }
    expect(await logShape(ds)).toEqual({ total: N + 3, pending: 3, distinctSeqs: N, minSeq: 1, maxSeq: N });

    expect(await testSequencer(ds, new SecretBytes(randomBytes(32))).drainOnce()).toBe(true);

    const listed = await audit.list({ limit: 100 });
    expect(listed.map((r) => [r.id, r.seq, r.subject])).toEqual([
      ...Array.from({ length: N }, (_, i) => [i + 1, i + 1, `machine:SN${i + 1}`]),
      [N + 1, N + 1, 'new:1'],
      [N + 2, N + 2, 'new:2'],
      [N + 3, N + 3, 'new:3'],
    ]);
    // The former records keep their chain hashes byte for byte; records after the migration have none.
    const chain = (await ds.query('SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq')) as { seq: string; prev_hash: Buffer | null; hash: Buffer | null }[];
    expect(chain.slice(0, N).map((r) => r.hash)).toEqual(former.map((f) => f.hash));
    expect(chain.slice(0, N).map((r) => r.prev_hash)).toEqual([GENESIS_HASH, ...former.slice(0, -1).map((f) => f.hash)]);
    expect(chain.slice(N).map((r) => [r.prev_hash, r.hash])).toEqual([
      [null, null],
      [null, null],
      [null, null],
    ]);
    // Leaf i is the former record i, hashed over the recorded_at text its chain hash covered.
    const formerLeaves = former.map((f, i) => leafHash(auditLeafBytes({ ...oldEntry(i + 1), seq: i + 1, recordedAt: f.recordedAt })));
    expect(listed.slice(0, N).map((r) => r.leafHash)).toEqual(formerLeaves);
    expect(rootOfLeafHashes(listed.map((r) => r.leafHash!)).toString('hex')).toBe((await audit.latestCheckpoint()).rootHash.toString('hex'));
    expect(await audit.verify()).toMatchObject({ ok: true, records: N + 3, pending: 0, checkpoints: 1 });
  });

  it('reverts to the former chain while every record has a chain hash, and refuses once one has none', async () => {
    const former = await writeFormerChain(ds, N);
    await migrateToTransparencyLog();
    await ds.undoLastMigration({ transaction: 'each' });
    expect(await verifyAuditChain(ds)).toEqual({ ok: true, records: N, headSeq: N, headHash: former.at(-1)!.hash.toString('hex') });
    expect(await ds.query(`SELECT to_regclass('audit_tree_nodes') AS t`)).toEqual([{ t: null }]);

    await migrateToTransparencyLog();
    await new AuditLog(ds, new SystemClock()).append({ actor: 'system:test', action: 'test.after', subject: '', outcome: 'success', details: {} });
    await expect(ds.undoLastMigration({ transaction: 'each' })).rejects.toThrow(
      'cannot revert the audit transparency log: 1 records have no chain hash',
    );
    expect(await logShape(ds)).toMatchObject({ total: N + 1, pending: 1 });
  });

  it('migrates an empty former chain: the first new record is leaf 1', async () => {
    await migrateToTransparencyLog();
    const audit = new AuditLog(ds, new SystemClock());
    await audit.append({ actor: 'system:test', action: 'test.after', subject: '', outcome: 'success', details: {} });
    expect(await testSequencer(ds, new SecretBytes(randomBytes(32))).drainOnce()).toBe(true);
    expect((await audit.list({ limit: 10 })).map((r) => [r.id, r.seq])).toEqual([[1, 1]]);
    expect(await audit.verify()).toMatchObject({ ok: true, records: 1 });
  });

  it.each([
    ['an edited record', `UPDATE audit_log SET subject = 'machine:forged' WHERE seq = 5`, /content-mismatch at record 5/],
    ['a deleted record', 'DELETE FROM audit_log WHERE seq = 5', /sequence-gap at record 5/],
    ['the newest records deleted', 'DELETE FROM audit_log WHERE seq > 9', /head-mismatch at record 10/],
  ])('does not integrate a former chain with %s: the sequencer refuses and nothing is sequenced', async (_, tamper, named) => {
    await writeFormerChain(ds, N);
    await asSuperuser(ds, tamper);
    await migrateToTransparencyLog();
    const audit = new AuditLog(ds, new SystemClock());
    await audit.append({ actor: 'system:test', action: 'test.after', subject: 'new:1', outcome: 'success', details: {} });
    const before = await logShape(ds);

    const refusal = testSequencer(ds, new SecretBytes(randomBytes(32))).drainOnce();
    await expect(refusal).rejects.toBeInstanceOf(LegacyChainBrokenError);
    await expect(refusal).rejects.toThrow(named);

    expect(await logShape(ds)).toEqual(before);
    expect(await audit.sequencerStatus()).toMatchObject({ pending: 1 });
    expect(await ds.query('SELECT size FROM audit_tree_head')).toEqual([{ size: '0' }]);
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_tree_nodes')).toEqual([{ n: 0 }]);
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_checkpoints')).toEqual([{ n: 0 }]);
  });
});
