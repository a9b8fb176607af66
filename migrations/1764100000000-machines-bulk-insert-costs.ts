import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Two per-row costs of a bulk inventory import (bench/README.md "inventory-import"), measured on
 * PostgreSQL 15 with 100k rows in one INSERT … SELECT:
 *
 * - The hex CHECKs on ek_pub_hash and ek_cert_fingerprint used `~ '^[0-9a-f]{64}$'`; PostgreSQL's
 *   regex engine runs a bounded repetition slowly (≈6 µs a value, ≈1 s of the 100k-row insert).
 *   `length(..) = 64 AND .. ~ '^[0-9a-f]+$'` accepts exactly the same strings ~10× faster.
 * - Random v4 machine ids scatter every primary-key insert over the whole index (page splits and
 *   full-page WAL images everywhere): ≈0.5 s of the same insert. rackseal_uuid_v7() gives
 *   RFC 9562 version 7 ids (48-bit Unix milliseconds, then random bits), so new rows append to the
 *   right edge of the index. PostgreSQL 15 has no built-in v7 generator.
 */
export class MachinesBulkInsertCosts1764100000000 implements MigrationInterface {
  name = 'MachinesBulkInsertCosts1764100000000';

  async up(db: QueryRunner): Promise<void> {
    for (const column of ['ek_pub_hash', 'ek_cert_fingerprint']) {
      await db.query(`
        ALTER TABLE machines DROP CONSTRAINT machines_${column}_check,
          ADD CONSTRAINT machines_${column}_check CHECK (length(${column}) = 64 AND ${column} ~ '^[0-9a-f]+$')`);
    }
    // RFC 9562 §5.7: the first 6 bytes are the Unix time in ms, version 0111, variant 10. gen_random_uuid
    // already set variant 10 and version 0100 (high nibble of byte 6); set_bit numbers bits from the
    // least significant bit of each byte, so bits 52 and 53 are 0x10 and 0x20 of byte 6: 0100 → 0111.
    await db.query(`
      CREATE FUNCTION rackseal_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
        SELECT encode(
          set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
          'hex')::uuid
      $$`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP FUNCTION rackseal_uuid_v7()');
    for (const column of ['ek_pub_hash', 'ek_cert_fingerprint']) {
      await db.query(`
        ALTER TABLE machines DROP CONSTRAINT machines_${column}_check,
          ADD CONSTRAINT machines_${column}_check CHECK (${column} ~ '^[0-9a-f]{64}$')`);
    }
  }
}
