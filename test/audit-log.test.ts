import {
  formatVerifierKey,
  AuditDetailsError,
  AuditLog,
  type AuditEntry,
  type AuditSequencer,
  type AuditVerification,
  generateAuditSigningKey,
  integrateBatch,
  RECORDED_AT_MICROS_SQL,
  recordedAtText,
  rootOfLeafHashes,
  signCheckpoint,
  type StoredCheckpoint,
} from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { openEnvelope } from '@rackseal/envelope';
import { SystemClock } from '@rackseal/platform';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { AuditTreeStore } from '../libs/audit/src/audit-tree-store';
import { forgeTreeOverRecords, recomputedLeafHashes, TEST_AUDIT_ORIGIN, testSequencer } from './support/audit-tree';
import { asSuperuser, createTestDatabase, openDataSource, resetAuditLog, type TestDatabase } from './support/database';

// Real PostgreSQL, real migrations: pending appends, the sequencer's tree, and the verifier naming
// every kind of tampering a database superuser can do (issue 11).

const entry = (i: number, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  actor: 'system:test',
  action: 'test.event',
  subject: `machine:${i}`,
  outcome: 'success',
  details: { i, nested: { b: [1, 'two', null], a: true } },
  ...extra,
});

const refusal = (table: string, op: string): RegExp => new RegExp(`^${table} is append-only: ${op} refused$`);

/** Rejects when `promise` has not settled within `ms`: an append that waits for another transaction. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms: it waited for another transaction`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('audit transparency log (PostgreSQL)', () => {
  const masterKey = new SecretBytes(randomBytes(32));
  let db: TestDatabase;
  let ds: DataSource;
  let audit: AuditLog;
  let sequencer: AuditSequencer;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url, 6);
    audit = new AuditLog(ds, new SystemClock());
  });

  beforeEach(async () => {
    await resetAuditLog(ds);
    sequencer = testSequencer(ds, masterKey);
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  async function appendMany(n: number, from = 1): Promise<void> {
    for (let i = from; i < from + n; i += 1) {
      await audit.append(entry(i));
    }
  }

  async function sequence(): Promise<void> {
    expect(await sequencer.drainOnce()).toBe(true);
  }

  const count = async (): Promise<number> => ((await ds.query('SELECT count(*)::int AS n FROM audit_log')) as { n: number }[])[0]!.n;

  const mismatch = (kind: string, seq: number | null): Partial<AuditVerification> => ({
    ok: false,
    problem: expect.objectContaining({ kind, seq }) as never,
  });

  describe('appends', () => {
    it('stores records pending (seq null, no chain hash) and the sequencer gives them 1..n in append order', async () => {
      const appended = [];
      for (let i = 1; i <= 4; i += 1) {
        appended.push(await audit.append(entry(i)));
      }
      expect(await ds.query('SELECT seq, prev_hash, hash FROM audit_log ORDER BY id')).toEqual(
        Array.from({ length: 4 }, () => ({ seq: null, prev_hash: null, hash: null })),
      );
      expect(await audit.sequencerStatus()).toMatchObject({ pending: 4, treeSize: 0 });
      // Pending records are not covered by the verdict, but counted.
      expect(await audit.verify()).toMatchObject({ ok: true, records: 0, pending: 4, checkpoints: 0 });
      await sequence();
      const listed = await audit.list({ limit: 10 });
      expect(listed.map((r) => [r.id, r.seq])).toEqual(appended.map((r, i) => [r.id, i + 1]));
      expect(await audit.sequencerStatus()).toEqual({ pending: 0, oldestPendingAgeMs: 0, unsigned: 0, unsignedAgeMs: 0, treeSize: 4 });
      expect(await audit.verify()).toMatchObject({ ok: true, records: 4, pending: 0, checkpoints: 1 });
    });

    it('appendMany stores each record as append does, in order, in the caller\'s transaction; the sequencer places and the verifier accepts them', async () => {
      const single = await audit.append(entry(1));
      const batch = await ds.transaction((m) => audit.appendMany([entry(2), entry(3), entry(4)], m));
      expect(batch.map((r) => r.action)).toEqual([entry(2).action, entry(3).action, entry(4).action]);
      expect(batch.map((r) => r.id)).toEqual([single.id + 1, single.id + 2, single.id + 3]);
      const rows = (await ds.query('SELECT id, actor, action, subject, outcome, details FROM audit_log ORDER BY id')) as { id: string; details: unknown }[];
      expect(rows.map((r) => ({ ...r, id: Number(r.id) }))).toEqual(
        [single, ...batch].map((r, i) => ({ id: r.id, actor: entry(i + 1).actor, action: entry(i + 1).action, subject: entry(i + 1).subject, outcome: entry(i + 1).outcome, details: entry(i + 1).details })),
      );
      // A rolled-back batch leaves nothing; a batch with one invalid entry writes nothing.
      await expect(ds.transaction(async (m) => {
        await audit.appendMany([entry(5)], m);
        throw new Error('rolled back');
      })).rejects.toThrow('rolled back');
      await expect(audit.appendMany([entry(6), { ...entry(7), outcome: 'maybe' as never }])).rejects.toThrow();
      expect(await count()).toBe(4);
      await sequence();
      expect(await audit.verify()).toMatchObject({ ok: true, records: 4, pending: 0 });
    });

    it('lets two open transactions append without waiting for each other, committing in either order', async () => {
      const first = ds.createQueryRunner();
      const second = ds.createQueryRunner();
      await Promise.all([first.connect(), second.connect()]);
      try {
        await first.startTransaction();
        await second.startTransaction();
        const a = await within(audit.append(entry(1), first.manager), 3000, 'the first append');
        // With the former hash chain this append waited on the chain head row the first transaction locked.
        const b = await within(audit.append(entry(2), second.manager), 3000, 'the second append');
        await second.commitTransaction();
        await first.commitTransaction();
        expect(b.id).toBeGreaterThan(a.id);
      } finally {
        await Promise.all([first.release(), second.release()]);
      }
      await sequence();
      expect((await audit.list({ limit: 10 })).map((r) => [r.subject, r.seq])).toEqual([
        ['machine:1', 1],
        ['machine:2', 2],
      ]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 2 });
    });

    it('appends while a sequencer batch holds the tree head locked', async () => {
      await appendMany(2);
      const batch = ds.createQueryRunner();
      await batch.connect();
      try {
        // What integrateBatch holds for the whole batch: the head row, then the pending rows it sequences.
        await batch.startTransaction();
        await batch.query('SELECT size FROM audit_tree_head WHERE id = 1 FOR UPDATE');
        await batch.query('UPDATE audit_log SET seq = 1 WHERE id = (SELECT min(id) FROM audit_log)');
        await within(audit.append(entry(3)), 3000, 'an append during a batch');
        await batch.rollbackTransaction();
      } finally {
        await batch.release();
      }
      await sequence();
      expect((await audit.list({ limit: 10 })).map((r) => [r.subject, r.seq])).toEqual([
        ['machine:1', 1],
        ['machine:2', 2],
        ['machine:3', 3],
      ]);
    });

    it('does not sequence a record whose transaction is still open, and takes it in a later batch', async () => {
      const open = ds.createQueryRunner();
      await open.connect();
      try {
        await open.startTransaction();
        await audit.append(entry(1), open.manager);
        await appendMany(1, 2);
        await sequence();
        expect((await audit.list({ limit: 10 })).map((r) => [r.subject, r.seq])).toEqual([['machine:2', 1]]);
        await open.commitTransaction();
      } finally {
        await open.release();
      }
      await sequence();
      expect((await audit.list({ limit: 10 })).map((r) => [r.subject, r.seq])).toEqual([
        ['machine:1', 2],
        ['machine:2', 1],
      ]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 2 });
    });

    it('writes the record inside the caller transaction: a rollback leaves no record', async () => {
      await expect(
        ds.transaction(async (m) => {
          await audit.append(entry(1), m);
          throw new Error('decision failed after auditing');
        }),
      ).rejects.toThrow('decision failed after auditing');
      expect(await count()).toBe(0);
      await audit.append(entry(2));
      await sequence();
      expect((await audit.list({ limit: 10 })).map((r) => [r.subject, r.seq])).toEqual([['machine:2', 1]]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 1 });
    });

    it('refuses secret-looking keys, a bad outcome and non-JSON details, and writes nothing', async () => {
      await expect(audit.append(entry(1, { details: { password: 'hunter2' } }))).rejects.toThrow(AuditDetailsError);
      await expect(audit.append(entry(1, { details: { wrapped: { privateKey: 'x' } } }))).rejects.toThrow(
        /details\.wrapped\.privateKey looks like a secret/,
      );
      await expect(audit.append(entry(1, { details: { when: new Date() as never } }))).rejects.toThrow(/plain JSON/);
      await expect(audit.append(entry(1, { details: [] as never }))).rejects.toThrow('audit details must be a JSON object');
      await expect(audit.append(entry(1, { outcome: 'maybe' as never }))).rejects.toThrow(/^audit outcome must be one of /);
      await expect(audit.append(entry(1, { actor: '' }))).rejects.toThrow('audit actor must be 1-200 characters');
      expect(await count()).toBe(0);
      await sequence();
      expect(await ds.query('SELECT size FROM audit_tree_head')).toEqual([{ size: '0' }]);
    });

    it('sequences in batches: each batch gives the next seqs, stores its nodes and moves the head', async () => {
      await appendMany(7);
      const session = ds.createQueryRunner();
      await session.connect();
      const sizes: number[] = [];
      try {
        for (;;) {
          const batch = await integrateBatch(session, { limit: 3, now: new Date() });
          sizes.push(batch.head.size);
          if (batch.integrated === 0) {
            break;
          }
          expect(batch.head.root).toEqual(rootOfLeafHashes(await recomputedLeafHashes(ds)));
        }
      } finally {
        await session.release();
      }
      expect(sizes).toEqual([3, 6, 7, 7]);
      expect((await audit.list({ limit: 10 })).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      // 7 leaves, 3 + 1 level-1 nodes, 1 level-2 node: every perfect subtree, nothing else.
      expect(await ds.query('SELECT level, count(*)::int AS n FROM audit_tree_nodes GROUP BY level ORDER BY level')).toEqual([
        { level: 0, n: 7 },
        { level: 1, n: 3 },
        { level: 2, n: 1 },
      ]);
      await sequence();
      expect((await audit.latestCheckpoint()).treeSize).toBe(7);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 7, checkpoints: 1 });
    });
  });

  describe('append-only triggers', () => {
    beforeEach(async () => {
      await appendMany(2);
      await sequence();
      await appendMany(1, 3);
    });

    it('lets a pending record get its seq and nothing else', async () => {
      const [pending] = (await ds.query('SELECT id FROM audit_log WHERE seq IS NULL')) as { id: string }[];
      await expect(ds.query(`UPDATE audit_log SET actor = 'x' WHERE id = $1`, [pending!.id])).rejects.toThrow(refusal('audit_log', 'UPDATE'));
      await expect(ds.query(`UPDATE audit_log SET seq = 3, subject = 'x' WHERE id = $1`, [pending!.id])).rejects.toThrow(
        refusal('audit_log', 'UPDATE'),
      );
      await expect(ds.query(`UPDATE audit_log SET recorded_at = recorded_at + interval '1 microsecond' WHERE id = $1`, [pending!.id])).rejects.toThrow(
        refusal('audit_log', 'UPDATE'),
      );
      await ds.query('UPDATE audit_log SET seq = 3 WHERE id = $1', [pending!.id]);
      expect(await ds.query('SELECT seq, subject FROM audit_log WHERE id = $1', [pending!.id])).toEqual([{ seq: '3', subject: 'machine:3' }]);
    });

    it('refuses a record inserted with a seq or chain hashes: only the sequencer places records', async () => {
      // Without the refusal, a row inserted beyond the tree looks like a former-chain record to the
      // sequencer, which then stops at the gap before it and never sequences anything again.
      const insert = (columns: string, values: string) =>
        ds.query(
          `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details${columns})
           VALUES (now(), 'system:test', 'test.event', 'machine:forged', 'success', '{}'${values})`,
        );
      const refused = /^audit_log records are appended pending \(no seq, prev_hash or hash\): INSERT refused$/;
      await expect(insert(', seq', ', 6')).rejects.toThrow(refused);
      await expect(insert(', seq', ', 3')).rejects.toThrow(refused);
      await expect(insert(', hash', `, sha256('x'::bytea)`)).rejects.toThrow(refused);
      await expect(insert(', prev_hash', `, sha256('x'::bytea)`)).rejects.toThrow(refused);
      expect(await count()).toBe(3);
      await sequence();
      expect((await audit.list({ limit: 10 })).map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 3 });
    });

    it('refuses changing a sequenced record, its seq included', async () => {
      await expect(ds.query('UPDATE audit_log SET seq = 10 WHERE seq = 1')).rejects.toThrow(refusal('audit_log', 'UPDATE'));
      await expect(ds.query('UPDATE audit_log SET seq = NULL WHERE seq = 1')).rejects.toThrow(refusal('audit_log', 'UPDATE'));
      await expect(ds.query(`UPDATE audit_log SET outcome = 'refused' WHERE seq = 2`)).rejects.toThrow(refusal('audit_log', 'UPDATE'));
      expect((await audit.list({ limit: 10 })).map((r) => [r.seq, r.outcome])).toEqual([
        [1, 'success'],
        [2, 'success'],
        [null, 'success'],
      ]);
    });

    it.each([
      ['audit_log', 'UPDATE', `UPDATE audit_log SET details = '{}' WHERE seq = 1`],
      ['audit_log', 'DELETE', 'DELETE FROM audit_log WHERE seq IS NULL'],
      ['audit_log', 'TRUNCATE', 'TRUNCATE audit_log'],
      ['audit_tree_nodes', 'UPDATE', `UPDATE audit_tree_nodes SET hash = sha256('x') WHERE level = 0 AND idx = 0`],
      ['audit_tree_nodes', 'DELETE', 'DELETE FROM audit_tree_nodes WHERE level = 1'],
      ['audit_tree_nodes', 'TRUNCATE', 'TRUNCATE audit_tree_nodes'],
      ['audit_checkpoints', 'UPDATE', `UPDATE audit_checkpoints SET root_hash = sha256('x')`],
      ['audit_checkpoints', 'DELETE', 'DELETE FROM audit_checkpoints'],
      ['audit_checkpoints', 'TRUNCATE', 'TRUNCATE audit_checkpoints'],
      ['audit_signing_keys', 'UPDATE', `UPDATE audit_signing_keys SET sealed_private_key = NULL`],
      // A master-key rotation may re-wrap sealed_private_key (migration 1765000000000); nothing else changes.
      ['audit_signing_keys', 'UPDATE', `UPDATE audit_signing_keys SET public_key = sha256(public_key)`],
      ['audit_signing_keys', 'UPDATE', `UPDATE audit_signing_keys SET name = 'other', sealed_private_key = sealed_private_key || '\\x00'::bytea`],
      ['audit_signing_keys', 'DELETE', 'DELETE FROM audit_signing_keys'],
      ['audit_signing_keys', 'TRUNCATE', 'TRUNCATE audit_signing_keys CASCADE'],
    ])('refuses on %s: %s', async (table, op, sql) => {
      const before = await ds.query(`SELECT count(*)::int AS n FROM ${table}`);
      expect(before).not.toEqual([{ n: 0 }]);
      await expect(ds.query(sql)).rejects.toThrow(refusal(table, op));
      expect(await ds.query(`SELECT count(*)::int AS n FROM ${table}`)).toEqual(before);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 2 });
    });
  });

  describe('the verifier names tampering', () => {
    const storedMicros = async (seq: number): Promise<bigint> => {
      const [row] = (await ds.query(`SELECT ${RECORDED_AT_MICROS_SQL} AS us FROM audit_log WHERE seq = $1`, [seq])) as { us: string }[];
      return BigInt(row!.us);
    };

    beforeEach(async () => {
      await audit.append(entry(1));
      await audit.append(entry(2, { details: { i: 9007199254740992, nested: { b: [1, 'two', null], a: true } } }));
      await appendMany(1, 3);
      await sequence();
      await appendMany(2, 4);
      await sequence();
      expect(await ds.query('SELECT tree_size FROM audit_checkpoints ORDER BY tree_size')).toEqual([{ tree_size: '3' }, { tree_size: '5' }]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 5, checkpoints: 2 });
    });

    it.each([
      ['actor', `actor = 'operator:mallory'`],
      ['action', `action = 'test.other'`],
      ['subject', `subject = 'machine:forged'`],
      ['outcome', `outcome = 'refused'`],
      ['details', `details = jsonb_set(details, '{nested,a}', 'false')`],
      ['details, a number below a double\'s precision (2^53 + 1)', `details = '{"i": 9007199254740993, "nested": {"a": true, "b": [1, "two", null]}}'`],
      ['details, a number beyond a double', `details = '{"i": 1e400, "nested": {"a": true, "b": [1, "two", null]}}'`],
      ['details, a secret-looking key', `details = details || '{"password": "x"}'`],
      ['recorded_at + 1 µs', `recorded_at = recorded_at + interval '1 microsecond'`],
      ['recorded_at - 1 µs', `recorded_at = recorded_at - interval '1 microsecond'`],
      ['recorded_at infinity', `recorded_at = 'infinity'`],
    ])('an edited %s: content-mismatch at that record', async (_, set) => {
      await asSuperuser(ds, `UPDATE audit_log SET ${set} WHERE seq = 2`);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        problem: {
          kind: 'content-mismatch',
          seq: 2,
          message: expect.stringMatching(/^record 2 does not match its leaf: it was modified/) as never,
        },
      });
    });

    it('accepts the same details written differently (1.0 for 1, keys reordered): jsonb compares values', async () => {
      await asSuperuser(ds, `UPDATE audit_log SET details = '{"nested": {"b": [1.0, "two", null], "a": true}, "i": 1.00}' WHERE seq = 1`);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 5 });
    });

    it('accepts recorded_at moved back to the hashed value: the leaf covers the value', async () => {
      const before = await storedMicros(3);
      await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at + interval '999 microseconds' WHERE seq = 3`);
      expect(await audit.verify()).toMatchObject(mismatch('content-mismatch', 3));
      await asSuperuser(ds, 'UPDATE audit_log SET recorded_at = $1::timestamptz WHERE seq = 3', [recordedAtText(before)]);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 5 });
    });

    it('a deleted record: sequence-gap at its seq', async () => {
      await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq = 3');
      expect(await audit.verify()).toMatchObject(mismatch('sequence-gap', 3));
    });

    it('a deletion that renumbered the following records: content-mismatch at the first moved one', async () => {
      await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq = 3');
      await asSuperuser(ds, 'UPDATE audit_log SET seq = seq - 1 WHERE seq > 3');
      expect(await audit.verify()).toMatchObject(mismatch('content-mismatch', 3));
    });

    it('a forged record inserted with a seq in the middle: content-mismatch at that seq', async () => {
      await asSuperuser(ds, 'UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3');
      await asSuperuser(ds, 'UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000');
      await asSuperuser(
        ds,
        `INSERT INTO audit_log (seq, recorded_at, actor, action, subject, outcome, details)
         SELECT 3, recorded_at, actor, action, 'machine:forged', outcome, details FROM audit_log WHERE seq = 2`,
      );
      expect(await audit.verify()).toMatchObject(mismatch('content-mismatch', 3));
    });

    it('a forged record inserted with the next seq beyond the tree: head-mismatch naming it', async () => {
      await asSuperuser(
        ds,
        `INSERT INTO audit_log (seq, recorded_at, actor, action, subject, outcome, details)
         SELECT 6, recorded_at, actor, action, 'machine:forged', outcome, details FROM audit_log WHERE seq = 5`,
      );
      expect(await audit.verify()).toMatchObject(mismatch('head-mismatch', 6));
    });

    it('two records swapped: content-mismatch at the first', async () => {
      await asSuperuser(ds, 'UPDATE audit_log SET seq = seq + 1000 WHERE seq IN (2, 3)');
      await asSuperuser(ds, 'UPDATE audit_log SET seq = CASE seq WHEN 1002 THEN 3 ELSE 2 END WHERE seq IN (1002, 1003)');
      expect(await audit.verify()).toMatchObject(mismatch('content-mismatch', 2));
    });

    it('a stored leaf hash edited: content-mismatch at that leaf', async () => {
      await asSuperuser(ds, `UPDATE audit_tree_nodes SET hash = sha256('forged'::bytea) WHERE level = 0 AND idx = 3`);
      expect(await audit.verify()).toMatchObject(mismatch('content-mismatch', 4));
    });

    it.each([
      [1, 0],
      [1, 1],
      [2, 0],
    ])('a stored subtree node (level %i, index %i) edited: node-mismatch', async (level, idx) => {
      await asSuperuser(ds, `UPDATE audit_tree_nodes SET hash = sha256('forged'::bytea) WHERE level = $1 AND idx = $2`, [level, idx]);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        problem: { kind: 'node-mismatch', seq: null, message: `stored tree node (level ${level}, index ${idx}) does not match the records` },
      });
    });

    it('a stored subtree node deleted: node-mismatch', async () => {
      await asSuperuser(ds, 'DELETE FROM audit_tree_nodes WHERE level = 2 AND idx = 0');
      expect(await audit.verify()).toMatchObject(mismatch('node-mismatch', null));
    });

    it('the head root changed: head-mismatch', async () => {
      await asSuperuser(ds, `UPDATE audit_tree_head SET root = sha256('forged'::bytea)`);
      expect(await audit.verify()).toMatchObject(mismatch('head-mismatch', null));
    });

    it('the head rolled back to an earlier size with that size\'s true root: head-mismatch at the first record beyond it', async () => {
      const leaves = await recomputedLeafHashes(ds);
      await asSuperuser(ds, 'UPDATE audit_tree_head SET size = 3, root = $1', [rootOfLeafHashes(leaves.slice(0, 3))]);
      expect(await audit.verify()).toMatchObject(mismatch('head-mismatch', 4));
    });

    it('the head grown beyond the records: sequence-gap', async () => {
      await asSuperuser(ds, 'UPDATE audit_tree_head SET size = 6');
      expect(await audit.verify()).toMatchObject(mismatch('sequence-gap', 6));
    });

    it('a checkpoint with a bad signature: checkpoint-signature', async () => {
      const note = (await audit.latestCheckpoint()).note;
      const sig = note.slice(note.lastIndexOf(' ') + 1).trim();
      const bytes = Buffer.from(sig, 'base64');
      bytes[bytes.length - 1]! ^= 0x01;
      const forged = note.replace(sig, bytes.toString('base64'));
      expect(forged).not.toBe(note);
      await asSuperuser(ds, 'UPDATE audit_checkpoints SET note = $1 WHERE tree_size = 5', [forged]);
      expect(await audit.verify()).toMatchObject(mismatch('checkpoint-signature', 5));
    });

    it('a checkpoint with an edited root: checkpoint-mismatch', async () => {
      await asSuperuser(ds, `UPDATE audit_checkpoints SET root_hash = sha256('forged'::bytea) WHERE tree_size = 5`);
      expect(await audit.verify()).toMatchObject(mismatch('checkpoint-mismatch', 5));
    });

    it('the newest records deleted with the head rewound and its nodes removed: caught by the later checkpoint', async () => {
      const leaves = await recomputedLeafHashes(ds);
      await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq > 3');
      await asSuperuser(ds, 'DELETE FROM audit_tree_nodes WHERE (level = 0 AND idx >= 3) OR (level = 1 AND idx >= 1) OR level = 2');
      await asSuperuser(ds, 'UPDATE audit_tree_head SET size = 3, root = $1', [rootOfLeafHashes(leaves.slice(0, 3))]);
      expect(await audit.verify()).toEqual({
        ok: false,
        records: 3,
        problem: { kind: 'checkpoint-mismatch', seq: 4, message: 'a checkpoint commits to 5 records but the log holds 3: records were removed' },
      });
    });
  });

  it('runs one verification at a time per process: a second one meanwhile is refused with audit.busy (503), and works after', async () => {
    for (let i = 0; i < 5; i += 1) {
      await audit.append({ actor: 'system:test', action: 'test.event', subject: '', outcome: 'success', details: { i } });
    }
    const first = audit.verify();
    await expect(audit.verify()).rejects.toMatchObject({ code: 'audit.busy', kind: 'unavailable', retryAfterSeconds: 10 });
    expect(await first).toMatchObject({ ok: true });
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  it('verify reads one snapshot: records the sequencer integrates while it runs are not "beyond the head"', async () => {
    await appendMany(3);
    await sequence();
    await appendMany(2, 4);
    // The sequencer integrates records 4 and 5 just after the verifier has read the head.
    const readHead = AuditTreeStore.head.bind(AuditTreeStore);
    const spy = jest.spyOn(AuditTreeStore, 'head').mockImplementationOnce(async (db, options) => {
      const head = await readHead(db, options);
      await sequence();
      return head;
    });
    try {
      expect(await audit.verify()).toMatchObject({ ok: true, records: 3, pending: 2 });
    } finally {
      spy.mockRestore();
    }
    expect(await audit.verify()).toMatchObject({ ok: true, records: 5, pending: 0 });
  });

  describe('a rewritten history re-signed consistently', () => {
    const saved: StoredCheckpoint[] = [];

    beforeEach(async () => {
      saved.length = 0;
      for (const n of [2, 4, 4]) {
        await appendMany(n, saved.length === 0 ? 1 : saved.at(-1)!.treeSize + 1);
        await sequence();
        saved.push(await audit.latestCheckpoint());
      }
      expect(saved.map((c) => c.treeSize)).toEqual([2, 6, 10]);
      expect(await audit.verify({ since: saved[1]!.note })).toMatchObject({ ok: true, records: 10, since: { treeSize: 6 } });
    });

    /** Rewrites every record after seq 3 (triggers off) — the history an insider wants to hide. */
    const rewriteAfter3 = () => asSuperuser(ds, `UPDATE audit_log SET subject = subject || ':rewritten' WHERE seq > 3`);

    async function realSigningKey(): Promise<{ keyId: string; privateKey: SecretBytes }> {
      const [row] = (await ds.query(
        'SELECT key_id, sealed_private_key FROM audit_signing_keys WHERE key_id = (SELECT key_id FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1)',
      )) as { key_id: string; sealed_private_key: Buffer }[];
      return { keyId: row!.key_id, privateKey: openEnvelope(masterKey, `audit-signing-key:${row!.key_id}`, row!.sealed_private_key) };
    }

    it('with the real key (opened with the master key): plain verify passes, verify since a saved checkpoint says not-extending', async () => {
      const key = await realSigningKey();
      await rewriteAfter3();
      const forged = await forgeTreeOverRecords(ds, { keepCheckpointsUpTo: 3, signer: { name: TEST_AUDIT_ORIGIN, privateKey: key.privateKey }, keyId: key.keyId });
      // Everything inside the database is consistent again: the documented limit of a verifier that only sees the database.
      expect(await audit.verify()).toMatchObject({ ok: true, records: 10, rootHash: forged.root.toString('hex') });
      // A checkpoint saved before the rewrite point still agrees; one saved after it does not.
      expect(await audit.verify({ since: saved[0]!.note })).toMatchObject({ ok: true, since: { treeSize: 2 } });
      expect(await audit.verify({ since: saved[1]!.note })).toEqual({
        ok: false,
        records: 10,
        problem: {
          kind: 'not-extending',
          seq: null,
          message: expect.stringContaining(`the log does not extend your saved checkpoint: at size 6 the records give root `) as never,
        },
      });
      expect(await audit.verify({ since: saved[2]!.note })).toMatchObject(mismatch('not-extending', null));
    });

    /**
     * The superuser's rewrite with a key of their own: the attacker's public key added to the log's keys,
     * every record after 3 rewritten, the tree re-made over the records and re-signed with that key
     * (checkpoints up to `keepCheckpointsUpTo` kept), and with `dropOtherKeys` the real key deleted too.
     */
    async function rewriteWithAttackerKey(keepCheckpointsUpTo: number, dropOtherKeys = false): Promise<ReturnType<typeof generateAuditSigningKey>> {
      const attacker = generateAuditSigningKey(TEST_AUDIT_ORIGIN);
      await asSuperuser(ds, 'INSERT INTO audit_signing_keys (key_id, name, public_key) VALUES ($1, $2, $3)', [
        attacker.keyId,
        TEST_AUDIT_ORIGIN,
        attacker.publicKey,
      ]);
      await rewriteAfter3();
      await forgeTreeOverRecords(ds, { keepCheckpointsUpTo, signer: { name: TEST_AUDIT_ORIGIN, privateKey: attacker.privateKey }, keyId: attacker.keyId });
      if (dropOtherKeys) {
        await asSuperuser(ds, 'DELETE FROM audit_signing_keys WHERE key_id <> $1', [attacker.keyId]);
      }
      return attacker;
    }

    it('with a key the attacker inserted: verify since a saved checkpoint says not-extending', async () => {
      await rewriteWithAttackerKey(3);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 10 });
      expect(await audit.verify({ since: saved[1]!.note })).toMatchObject(mismatch('not-extending', null));
    });

    it('with the real key removed from the log as well: the saved checkpoint no longer opens (checkpoint-signature)', async () => {
      await rewriteWithAttackerKey(-1, true);
      expect(await audit.verify()).toMatchObject({ ok: true, records: 10, checkpoints: 1 });
      expect(await audit.verify({ since: saved[1]!.note })).toMatchObject({
        ok: false,
        problem: { kind: 'checkpoint-signature', message: expect.stringContaining('which this log does not know') as never },
      });
    });

    it('with the real key removed but the operator\'s pinned key given: not-extending, not a signature problem', async () => {
      // The key that signed the saved checkpoint: the suite's database outlives a test, so earlier tests' keys may be there too.
      const [logKey] = (await ds.query('SELECT name, public_key FROM audit_signing_keys WHERE key_id = $1', [saved[1]!.keyId])) as {
        name: string;
        public_key: Buffer;
      }[];
      const pinned = formatVerifierKey(logKey!.name, logKey!.public_key);
      const attacker = await rewriteWithAttackerKey(-1, true);
      expect(await audit.verify({ since: saved[1]!.note, sinceKey: pinned })).toMatchObject(mismatch('not-extending', null));
      // A pinned key that did not sign the saved note is a signature problem, whatever the log holds.
      expect(await audit.verify({ since: saved[1]!.note, sinceKey: attacker.verifierKey })).toMatchObject({
        ok: false,
        problem: { kind: 'checkpoint-signature', message: expect.stringContaining('with the pinned key') as never },
      });
    });

    it('records removed below a saved checkpoint\'s size: not-extending', async () => {
      const key = await realSigningKey();
      await asSuperuser(ds, 'DELETE FROM audit_log WHERE seq > 4');
      await forgeTreeOverRecords(ds, { keepCheckpointsUpTo: 3, signer: { name: TEST_AUDIT_ORIGIN, privateKey: key.privateKey }, keyId: key.keyId });
      expect(await audit.verify()).toMatchObject({ ok: true, records: 4 });
      expect(await audit.verify({ since: saved[1]!.note })).toMatchObject({
        ok: false,
        problem: { kind: 'not-extending', message: expect.stringContaining('fewer than your saved checkpoint\'s 6') as never },
      });
    });

    it('refuses a saved checkpoint this log never signed or that was altered: checkpoint-signature', async () => {
      const stranger = generateAuditSigningKey(TEST_AUDIT_ORIGIN);
      const foreign = signCheckpoint(
        { origin: TEST_AUDIT_ORIGIN, size: 6, rootHash: saved[1]!.rootHash, time: new Date() },
        { name: TEST_AUDIT_ORIGIN, privateKey: stranger.privateKey },
      );
      expect(await audit.verify({ since: foreign })).toMatchObject({
        ok: false,
        problem: { kind: 'checkpoint-signature', message: expect.stringContaining(`signed by key ${stranger.keyId}, which this log does not know`) as never },
      });
      const altered = saved[1]!.note.replace('\n6\n', '\n7\n');
      expect(altered).not.toBe(saved[1]!.note);
      expect(await audit.verify({ since: altered })).toMatchObject(mismatch('checkpoint-signature', null));
      expect(await audit.verify({ since: 'not a note' })).toMatchObject(mismatch('checkpoint-signature', null));
    });
  });
});
