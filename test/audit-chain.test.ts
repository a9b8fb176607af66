import {
  AuditDetailsError,
  AuditLog,
  auditRecordHash,
  GENESIS_HASH,
  RECORDED_AT_MICROS_SQL,
  recordedAtText,
  verifyAuditChain,
  type AuditEntry,
} from '@rackseal/audit';
import { SystemClock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import { asSuperuser, createTestDatabase, openDataSource, type TestDatabase } from './support/database';

// Real PostgreSQL, real migrations: the append-only hash chain and its tamper detection.

const entry = (i: number, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  actor: 'system:test',
  action: 'test.event',
  subject: `machine:${i}`,
  outcome: 'success',
  details: { i, nested: { b: [1, 'two', null], a: true } },
  ...extra,
});

describe('audit log hash chain (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let audit: AuditLog;

  beforeEach(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    audit = new AuditLog(ds, new SystemClock());
  });

  afterEach(async () => {
    await ds.destroy();
    await db.drop();
  });

  async function appendMany(n: number): Promise<void> {
    for (let i = 1; i <= n; i += 1) {
      await audit.append(entry(i));
    }
  }

  it('verifies an empty chain and a chain of appended records', async () => {
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 0 });
    await appendMany(5);
    const verdict = await verifyAuditChain(ds);
    expect(verdict).toMatchObject({ ok: true, records: 5, headSeq: 5 });
    const rows = (await ds.query('SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq')) as {
      seq: string;
      prev_hash: Buffer;
      hash: Buffer;
    }[];
    expect(rows[0]!.prev_hash.equals(Buffer.alloc(32))).toBe(true);
    for (let i = 1; i < rows.length; i += 1) {
      expect(rows[i]!.prev_hash.equals(rows[i - 1]!.hash)).toBe(true);
    }
  });

  it('keeps one linear chain when many processes append concurrently', async () => {
    // Four independent pools stand in for four processes; each fires 25 appends at once.
    const pools = await Promise.all([1, 2, 3, 4].map(() => openDataSource(db.url, 5)));
    try {
      const writers = pools.map((pool) => new AuditLog(pool, new SystemClock()));
      await Promise.all(
        writers.flatMap((writer, w) => Array.from({ length: 25 }, (_, i) => writer.append(entry(w * 100 + i)))),
      );
    } finally {
      await Promise.all(pools.map((p) => p.destroy()));
    }
    const shape = (await ds.query(
      'SELECT count(*)::int AS count, max(seq)::int AS max, count(DISTINCT prev_hash)::int AS distinct_prev FROM audit_log',
    )) as unknown;
    expect(shape).toEqual([{ count: 100, max: 100, distinct_prev: 100 }]);
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 100 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE through the append-only triggers', async () => {
    await appendMany(2);
    await expect(ds.query(`UPDATE audit_log SET actor = 'x' WHERE seq = 1`)).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(ds.query('DELETE FROM audit_log WHERE seq = 2')).rejects.toThrow(/append-only: DELETE refused/);
    await expect(ds.query('TRUNCATE audit_log')).rejects.toThrow(/append-only: TRUNCATE refused/);
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 2 });
  });

  it('detects an edited record', async () => {
    await appendMany(4);
    await asSuperuser(ds, `UPDATE audit_log SET details = jsonb_set(details, '{i}', '99') WHERE seq = 2`);
    expect(await verifyAuditChain(ds)).toEqual({
      ok: false,
      records: 1,
      problem: { kind: 'content-mismatch', seq: 2, message: 'record 2 was modified after it was written' },
    });
  });

  // pg reads jsonb numbers into doubles, and the hash refuses what AuditLog.append refuses: edits the
  // verifier used to miss (2^53 + 1 reads as 2^53) or to crash on (exit 2 / HTTP 500 instead of a verdict).
  it.each([
    ['a number changed below a double\'s precision', `'{"i": 9007199254740993, "nested": {"a": true, "b": [1, "two", null]}}'`],
    ['a number beyond a double', `'{"i": 1e400, "nested": {"a": true, "b": [1, "two", null]}}'`],
    ['a secret-looking key AuditLog.append refuses', `'{"i": 2, "password": "x", "nested": {"a": true, "b": [1, "two", null]}}'`],
  ])('names a record whose details were edited to %s as modified, without throwing', async (_, details) => {
    await audit.append(entry(1));
    await audit.append(entry(2, { details: { i: 9007199254740992, nested: { b: [1, 'two', null], a: true } } }));
    await audit.append(entry(3));
    // Same value written differently (1.0 for 1, keys reordered) is not an edit: jsonb compares values.
    await asSuperuser(ds, `UPDATE audit_log SET details = '{"nested": {"b": [1.0, "two", null], "a": true}, "i": 1.00}' WHERE seq = 1`);
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 3 });
    await asSuperuser(ds, `UPDATE audit_log SET details = ${details} WHERE seq = 2`);
    expect(await verifyAuditChain(ds)).toEqual({
      ok: false,
      records: 1,
      problem: { kind: 'content-mismatch', seq: 2, message: 'record 2 was modified after it was written' },
    });
  });

  it('detects an edit whose hash was recomputed, at the link to the next record', async () => {
    await appendMany(4);
    // The attacker edits record 2 and stores the hash that matches the new content.
    const [row] = (await ds.query(`SELECT ${RECORDED_AT_MICROS_SQL} AS us, prev_hash FROM audit_log WHERE seq = 2`)) as {
      us: string;
      prev_hash: Buffer;
    }[];
    const forged = auditRecordHash(entry(2, { outcome: 'refused' }), 2, recordedAtText(row!.us)!, row!.prev_hash);
    await asSuperuser(ds, `UPDATE audit_log SET outcome = 'refused', hash = $1 WHERE seq = 2`, [forged]);
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, records: 2, problem: { kind: 'broken-link', seq: 3 } });
  });

  describe('recorded_at, hashed exactly as PostgreSQL stores it (microseconds)', () => {
    const storedMicros = async (seq: number): Promise<bigint> => {
      const [row] = (await ds.query(`SELECT ${RECORDED_AT_MICROS_SQL} AS us FROM audit_log WHERE seq = $1`, [seq])) as { us: string }[];
      return BigInt(row!.us);
    };

    it('stores whole milliseconds hashed as Date.toISOString() renders them, as records written before this change were', async () => {
      const record = await audit.append(entry(1));
      expect(await storedMicros(1)).toBe(BigInt(record.recordedAt.getTime()) * 1000n);
      expect(record.hash).toEqual(auditRecordHash(entry(1), 1, record.recordedAt.toISOString(), GENESIS_HASH));
    });

    it.each([
      ['+1 µs', `recorded_at + interval '1 microsecond'`],
      ['-1 µs', `recorded_at - interval '1 microsecond'`],
      ['+999 µs', `recorded_at + interval '999 microseconds'`],
    ])('names a record whose recorded_at was moved by %s as modified', async (_, newValue) => {
      await appendMany(3);
      const before = await storedMicros(2);
      await asSuperuser(ds, `UPDATE audit_log SET recorded_at = ${newValue} WHERE seq = 2`);
      expect((await storedMicros(2)) - before).not.toBe(0n);
      expect(await verifyAuditChain(ds)).toEqual({
        ok: false,
        records: 1,
        problem: { kind: 'content-mismatch', seq: 2, message: 'record 2 was modified after it was written' },
      });
      // Moved back, the record verifies again: the hash covers the value, not its precision.
      await asSuperuser(ds, 'UPDATE audit_log SET recorded_at = $1::timestamptz WHERE seq = 2', [recordedAtText(before)]);
      expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 3 });
    });

    it.each([
      ['infinity', `'infinity'`],
      ['-infinity', `'-infinity'`],
      ['a year beyond a JS Date (294276 AD)', `'294276-12-31 23:59:59+00'`],
    ])('names a record whose recorded_at was set to %s as modified, without throwing', async (_, newValue) => {
      await appendMany(3);
      await asSuperuser(ds, `UPDATE audit_log SET recorded_at = ${newValue} WHERE seq = 3`);
      expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, records: 2, problem: { kind: 'content-mismatch', seq: 3 } });
    });

    it('verifies a stored sub-millisecond value its hash covers: six digits are hashed, not truncated to three', async () => {
      await appendMany(2);
      const micros = (await storedMicros(2)) + 1n;
      const [row] = (await ds.query('SELECT prev_hash FROM audit_log WHERE seq = 2')) as { prev_hash: Buffer }[];
      const text = recordedAtText(micros)!;
      expect(text).toMatch(/\.\d{6}Z$/);
      const hash = auditRecordHash(entry(2), 2, text, row!.prev_hash);
      // Rewriting the newest record and the head is the limit documented in audit-chain-verifier.ts.
      await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at + interval '1 microsecond', hash = $1 WHERE seq = 2`, [hash]);
      await asSuperuser(ds, 'UPDATE audit_chain_head SET hash = $1 WHERE id = 1', [hash]);
      expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 2, headHash: hash.toString('hex') });
      // The same record hashed over the millisecond text (what the verifier used to compute) no longer matches.
      expect(auditRecordHash(entry(2), 2, text.replace(/(\.\d{3})\d{3}Z$/, '$1Z'), row!.prev_hash)).not.toEqual(hash);
    });
  });

  it('detects a deleted record in the middle', async () => {
    await appendMany(5);
    await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq = 3');
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, records: 2, problem: { kind: 'sequence-gap', seq: 3 } });
  });

  it('detects a deletion that renumbered the following records', async () => {
    await appendMany(5);
    await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq = 3');
    await asSuperuser(ds, 'UPDATE audit_log SET seq = seq - 1 WHERE seq > 3');
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, problem: { kind: 'broken-link', seq: 3 } });
  });

  it('detects deletion of the newest records through the chain head', async () => {
    await appendMany(5);
    await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq >= 4');
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, records: 3, problem: { kind: 'head-mismatch' } });
  });

  it('detects two records swapped in order', async () => {
    await appendMany(5);
    await asSuperuser(ds, 'UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (2, 3)');
    await asSuperuser(ds, 'UPDATE audit_log SET seq = CASE seq WHEN 1002 THEN 3 ELSE 2 END WHERE seq IN (1002, 1003)');
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: false, problem: { kind: 'broken-link', seq: 2 } });
  });

  it('writes the record inside the caller transaction: a rollback leaves no record', async () => {
    await expect(
      ds.transaction(async (m) => {
        await audit.append(entry(1), m);
        throw new Error('decision failed after auditing');
      }),
    ).rejects.toThrow('decision failed after auditing');
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_log')).toEqual([{ n: 0 }]);
    await audit.append(entry(2));
    expect(await verifyAuditChain(ds)).toMatchObject({ ok: true, records: 1 });
  });

  it('refuses details that look like secrets or are not JSON, and writes nothing', async () => {
    await expect(audit.append(entry(1, { details: { password: 'hunter2' } }))).rejects.toThrow(AuditDetailsError);
    await expect(audit.append(entry(1, { details: { wrapped: { privateKey: 'x' } } }))).rejects.toThrow(
      /details\.wrapped\.privateKey looks like a secret/,
    );
    await expect(audit.append(entry(1, { details: { when: new Date() as never } }))).rejects.toThrow(/plain JSON/);
    await expect(audit.append(entry(1, { outcome: 'maybe' as never }))).rejects.toThrow(/outcome must be one of/);
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_log')).toEqual([{ n: 0 }]);
    const [head] = (await ds.query('SELECT seq FROM audit_chain_head')) as { seq: string }[];
    expect(head!.seq).toBe('0');
  });
});
