import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit log becomes a Merkle-tree transparency log (RFC 9162 §2.1; docs/architecture.md §4.9):
 * - `audit_log` records are appended *pending*: a surrogate `id`, no `seq`, nothing shared with other
 *   writers, so appends in many transactions never wait for each other. The sequencer later sets `seq`
 *   (the leaf index + 1), the one change the guard trigger allows: NULL → a number, every other column
 *   unchanged. `prev_hash`/`hash` stay for the records of the former hash chain and are NULL afterwards;
 *   an INSERT that sets any of seq, prev_hash or hash is refused.
 * - `audit_tree_nodes` holds every perfect aligned subtree hash — (level L, idx i) is the tree hash of
 *   leaves [i·2^L, (i+1)·2^L) — written once, when the subtree completes; inclusion and consistency
 *   proofs are read from it in O(log² n) rows.
 * - `audit_tree_head` is the sequencer's committed tree size and root, changed only by the sequencer
 *   in the same transaction as the sequence numbers and nodes of a batch.
 * - `audit_signing_keys` and `audit_checkpoints`: Ed25519 keys (private half envelope-encrypted under the
 *   master key, or absent when given in config) and every signed checkpoint (C2SP tlog-checkpoint).
 * Existing records keep their seq; the sequencer verifies the former chain once and integrates them as
 * the first leaves, in order (docs/decisions.md, "Audit transparency log").
 */
export class AuditTransparencyLog1764300000000 implements MigrationInterface {
  name = 'AuditTransparencyLog1764300000000';

  async up(db: QueryRunner): Promise<void> {
    // One refusal function for every append-only audit table; the message names the table.
    await db.query(`
      CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);

    // Existing records get id = seq, so listing order (by id) stays chain order.
    await db.query(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete`);
    await db.query(`ALTER TABLE audit_log ADD COLUMN id bigint`);
    await db.query(`UPDATE audit_log SET id = seq`);
    await db.query(`ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete`);
    await db.query(`CREATE SEQUENCE audit_log_id_seq OWNED BY audit_log.id`);
    await db.query(`SELECT setval('audit_log_id_seq', COALESCE((SELECT max(id) FROM audit_log), 0) + 1, false)`);
    await db.query(`ALTER TABLE audit_log ALTER COLUMN id SET DEFAULT nextval('audit_log_id_seq'), ALTER COLUMN id SET NOT NULL`);
    await db.query(`ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey`);
    await db.query(`ALTER TABLE audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (id)`);
    await db.query(`ALTER TABLE audit_log ALTER COLUMN seq DROP NOT NULL, ADD CONSTRAINT audit_log_seq_key UNIQUE (seq)`);
    await db.query(`ALTER TABLE audit_log ALTER COLUMN prev_hash DROP NOT NULL, ALTER COLUMN hash DROP NOT NULL`);
    // The sequencer's work list: small, because records leave it within the merge delay.
    await db.query(`CREATE INDEX audit_log_pending_idx ON audit_log (id) WHERE seq IS NULL`);

    await db.query(`DROP TRIGGER audit_log_no_update_delete ON audit_log`);
    await db.query(`
      CREATE FUNCTION audit_log_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        unchanged audit_log;
      BEGIN
        -- Sequencing is the one update: a pending record gets its seq and nothing else changes. The
        -- whole-row comparison covers every column, present and future; it costs a third of comparing
        -- two to_jsonb() renderings of the row (bench/README.md, audit-append).
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL THEN
          unchanged := NEW;
          unchanged.seq := NULL;
          IF unchanged IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
          END IF;
        END IF;
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await db.query(`
      CREATE TRIGGER audit_log_sequence_only BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_guard_update()`);
    // A record enters pending; only the sequencer gives it a place. A row inserted with a seq beyond the
    // tree would look like a former-chain record to the sequencer, which would stop at the gap before it.
    await db.query(`
      CREATE FUNCTION audit_log_guard_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.seq IS NULL AND NEW.prev_hash IS NULL AND NEW.hash IS NULL THEN
          RETURN NEW;
        END IF;
        RAISE EXCEPTION '% records are appended pending (no seq, prev_hash or hash): % refused', TG_TABLE_NAME, TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await db.query(`
      CREATE TRIGGER audit_log_insert_pending BEFORE INSERT ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_guard_insert()`);
    await db.query(`
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);

    await db.query(`
      CREATE TABLE audit_tree_nodes (
        level  smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
        idx    bigint   NOT NULL CHECK (idx >= 0),
        hash   bytea    NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, idx)
      )`);
    await db.query(`
      CREATE TABLE audit_tree_head (
        id          smallint    PRIMARY KEY CHECK (id = 1),
        size        bigint      NOT NULL CHECK (size >= 0),
        root        bytea       NOT NULL CHECK (octet_length(root) = 32),
        updated_at  timestamptz NOT NULL
      )`);
    // The empty tree's root is SHA-256 of the empty string (RFC 9162 §2.1.1).
    await db.query(`INSERT INTO audit_tree_head (id, size, root, updated_at) VALUES (1, 0, sha256(''::bytea), now())`);
    await db.query(`
      CREATE TABLE audit_signing_keys (
        key_id              text        PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{8}$'),
        name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        public_key          bytea       NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
        sealed_private_key  bytea,
        created_at          timestamptz NOT NULL DEFAULT now()
      )`);
    await db.query(`
      CREATE TABLE audit_checkpoints (
        tree_size  bigint      PRIMARY KEY CHECK (tree_size >= 0),
        root_hash  bytea       NOT NULL CHECK (octet_length(root_hash) = 32),
        signed_at  timestamptz NOT NULL,
        key_id     text        NOT NULL REFERENCES audit_signing_keys (key_id),
        note       text        NOT NULL CHECK (length(note) <= 4096)
      )`);
    for (const table of ['audit_tree_nodes', 'audit_checkpoints', 'audit_signing_keys']) {
      await db.query(`
        CREATE TRIGGER ${table}_no_update_delete BEFORE UPDATE OR DELETE ON ${table}
          FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
      await db.query(`
        CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
          FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
    }
  }

  async down(db: QueryRunner): Promise<void> {
    // Records appended after this migration have no chain hashes: going back is only possible while there are none.
    const [pendingOrNew] = (await db.query(`SELECT count(*)::int AS n FROM audit_log WHERE hash IS NULL`)) as { n: number }[];
    if (pendingOrNew!.n > 0) {
      throw new Error(`cannot revert the audit transparency log: ${pendingOrNew!.n} records have no chain hash`);
    }
    await db.query(`DROP TABLE audit_checkpoints, audit_signing_keys, audit_tree_head, audit_tree_nodes`);
    await db.query(`DROP TRIGGER audit_log_sequence_only ON audit_log`);
    await db.query(`DROP TRIGGER audit_log_no_delete ON audit_log`);
    await db.query(`DROP TRIGGER audit_log_insert_pending ON audit_log`);
    await db.query(`DROP FUNCTION audit_log_guard_update()`);
    await db.query(`DROP FUNCTION audit_log_guard_insert()`);
    await db.query(`DROP INDEX audit_log_pending_idx`);
    await db.query(`ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey, DROP CONSTRAINT audit_log_seq_key`);
    await db.query(`ALTER TABLE audit_log DROP COLUMN id`);
    await db.query(`ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ADD PRIMARY KEY (seq)`);
    await db.query(`ALTER TABLE audit_log ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL`);
    await db.query(`
      CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
  }
}
