/**
 * The machines table's bulk-insert migration (1764100000000): the cheaper hex CHECKs accept and
 * refuse exactly what the old `^[0-9a-f]{64}$` did, and rackseal_uuid_v7() makes RFC 9562 version 7
 * ids whose first 48 bits are the current Unix time in milliseconds.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';

describe('machines schema (migration 1764100000000)', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const HASH = 'a'.repeat(64);

  /** Inserts one machine (rolled back) and answers "ok" or the violated constraint's name. */
  async function tryInsert(ekPubHash: string, fingerprint: string | null): Promise<string> {
    const runner = ds.createQueryRunner();
    await runner.startTransaction();
    try {
      await runner.query(
        `INSERT INTO machines (id, serial, ek_pub_hash, ek_cert, ek_cert_fingerprint, state, imported_at, updated_at)
         VALUES ($1, 'SN1', $2, $3, $4, 'imported', now(), now())`,
        [randomUUID(), ekPubHash, fingerprint === null ? null : Buffer.from([0x30]), fingerprint],
      );
      return 'ok';
    } catch (error) {
      return (error as { constraint?: string }).constraint ?? (error as Error).message;
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }
  }

  it.each([
    ['64 lowercase hex digits', HASH, 'ok'],
    ['digits only', '0123456789'.repeat(6) + '0123', 'ok'],
    ['63 digits', HASH.slice(1), 'machines_ek_pub_hash_check'],
    ['65 digits', `${HASH}a`, 'machines_ek_pub_hash_check'],
    ['uppercase', 'A'.repeat(64), 'machines_ek_pub_hash_check'],
    ['a non-hex letter', `${HASH.slice(1)}g`, 'machines_ek_pub_hash_check'],
    ['a trailing newline', `${HASH.slice(1)}\n`, 'machines_ek_pub_hash_check'],
    ['empty', '', 'machines_ek_pub_hash_check'],
  ])('ek_pub_hash %s → %s', async (_what, value, expected) => {
    expect(await tryInsert(value, null)).toBe(expected);
  });

  it('ek_cert_fingerprint is held to the same rule', async () => {
    expect(await tryInsert(HASH, 'b'.repeat(64))).toBe('ok');
    expect(await tryInsert(HASH, 'B'.repeat(64))).toBe('machines_ek_cert_fingerprint_check');
    expect(await tryInsert(HASH, 'b'.repeat(63))).toBe('machines_ek_cert_fingerprint_check');
    expect(await tryInsert(HASH, `${'b'.repeat(63)}-`)).toBe('machines_ek_cert_fingerprint_check');
  });

  it('rackseal_uuid_v7(): version 7, variant 10, the current time in ms up front, distinct values ordered by time', async () => {
    const before = Date.now();
    const first = (await ds.query('SELECT rackseal_uuid_v7()::text AS id FROM generate_series(1, 1000)')) as { id: string }[];
    await new Promise((resolve) => setTimeout(resolve, 5));
    const [{ id: later }] = (await ds.query('SELECT rackseal_uuid_v7()::text AS id')) as [{ id: string }];
    const after = Date.now();
    const ids = first.map((r) => r.id);
    expect(new Set(ids).size).toBe(1000);
    for (const id of [...ids, later]) {
      const hex = id.replace(/-/g, '');
      expect({ version: hex[12], variant: (parseInt(hex[16]!, 16) >> 2).toString(2) }).toEqual({ version: '7', variant: '10' });
      const ms = parseInt(hex.slice(0, 12), 16);
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(after);
    }
    expect(ids.every((id) => id < later)).toBe(true);
  });
});
