import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The machine inventory (docs/architecture.md §3: one row per machine, bound to one ekPubHash) and
 * the record of every CSV import. `ek_cert` is the certificate's DER as read (NV header and padding removed), null
 * when the row gave only `ek_pub_hash`.
 */
export class CreateInventory1764000000000 implements MigrationInterface {
  name = 'CreateInventory1764000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE inventory_imports (
        id             uuid        PRIMARY KEY,
        started_by     text        NOT NULL,
        file_name      text        CHECK (length(file_name) <= 255),
        dry_run        boolean     NOT NULL,
        partial        boolean     NOT NULL,
        status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'refused', 'failed')),
        rows_total     integer     NOT NULL DEFAULT 0,
        rows_valid     integer     NOT NULL DEFAULT 0,
        rows_invalid   integer     NOT NULL DEFAULT 0,
        rows_created   integer     NOT NULL DEFAULT 0,
        rows_updated   integer     NOT NULL DEFAULT 0,
        rows_unchanged integer     NOT NULL DEFAULT 0,
        problems       jsonb       NOT NULL DEFAULT '[]'::jsonb,
        problems_truncated boolean NOT NULL DEFAULT false,
        created_at     timestamptz NOT NULL,
        finished_at    timestamptz
      )`);
    await db.query(`
      CREATE TABLE machines (
        id                  uuid        PRIMARY KEY,
        serial              text        NOT NULL UNIQUE CHECK (length(serial) BETWEEN 1 AND 128),
        asset_tag           text        CHECK (length(asset_tag) <= 128),
        hostname            text        CHECK (length(hostname) <= 253),
        group_name          text        CHECK (length(group_name) <= 63),
        ek_pub_hash         text        NOT NULL UNIQUE CHECK (ek_pub_hash ~ '^[0-9a-f]{64}$'),
        ek_cert             bytea,
        ek_cert_fingerprint text        CHECK (ek_cert_fingerprint ~ '^[0-9a-f]{64}$'),
        state               text        NOT NULL CHECK (state IN ('imported', 'attested', 'quarantined', 'revoked')),
        imported_at         timestamptz NOT NULL,
        updated_at          timestamptz NOT NULL,
        import_id           uuid        REFERENCES inventory_imports (id),
        CHECK ((ek_cert IS NULL) = (ek_cert_fingerprint IS NULL))
      )`);
    await db.query('CREATE INDEX machines_group_name ON machines (group_name)');
    await db.query('CREATE INDEX inventory_imports_created_at ON inventory_imports (created_at)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE machines');
    await db.query('DROP TABLE inventory_imports');
  }
}
