import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Trusted TPM vendor CAs (issue 5, docs/architecture.md §4.1). Public certificates only: nothing here is
 * secret. The DER is kept byte for byte (signatures are checked over it); the other columns are
 * derived from it for listing and are never trusted over the DER.
 */
export class CreateVendorCas1763900000000 implements MigrationInterface {
  name = 'CreateVendorCas1763900000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE vendor_cas (
        id            uuid        PRIMARY KEY,
        fingerprint   char(64)    NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
        der           bytea       NOT NULL CHECK (octet_length(der) BETWEEN 1 AND 65536),
        subject       text        NOT NULL,
        issuer        text        NOT NULL,
        serial        text        NOT NULL,
        not_before    timestamptz NOT NULL,
        not_after     timestamptz NOT NULL,
        kind          text        NOT NULL CHECK (kind IN ('root', 'intermediate')),
        is_anchor     boolean     NOT NULL,
        enabled       boolean     NOT NULL DEFAULT true,
        source        text        CHECK (length(source) <= 255),
        added_at      timestamptz NOT NULL,
        added_by      text        NOT NULL,
        disabled_at   timestamptz,
        disabled_by   text,
        CHECK (kind = 'intermediate' OR is_anchor),
        CHECK (enabled = (disabled_at IS NULL))
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE vendor_cas');
  }
}
