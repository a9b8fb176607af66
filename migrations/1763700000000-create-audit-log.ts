import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The append-only, hash-chained audit log.
 * - `seq` is the chain position (1, 2, …); `prev_hash` is the hash of record seq-1 (32 zero bytes
 *   for seq 1); `hash` covers the record's content and prev_hash (see libs/audit audit-hash.ts).
 * - UNIQUE(prev_hash) makes a fork impossible even for a writer that skips the application lock.
 * - audit_chain_head holds the newest (seq, hash): appenders lock that row, and verification
 *   compares the last record with it, so deleting the newest records is detected too.
 * - Triggers refuse UPDATE, DELETE and TRUNCATE; only a superuser who disables them can tamper,
 *   and verification detects that.
 */
export class CreateAuditLog1763700000000 implements MigrationInterface {
  name = 'CreateAuditLog1763700000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE audit_log (
        seq          bigint      PRIMARY KEY CHECK (seq > 0),
        recorded_at  timestamptz NOT NULL,
        actor        text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
        action       text        NOT NULL CHECK (length(action) BETWEEN 1 AND 200),
        subject      text        NOT NULL CHECK (length(subject) <= 500),
        outcome      text        NOT NULL CHECK (outcome IN ('success', 'refused', 'failure')),
        details      jsonb       NOT NULL,
        prev_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(prev_hash) = 32),
        hash         bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
      )`);
    await db.query(`CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq)`);
    await db.query(`CREATE INDEX audit_log_action_idx ON audit_log (action, seq)`);
    await db.query(`
      CREATE TABLE audit_chain_head (
        id    smallint PRIMARY KEY CHECK (id = 1),
        seq   bigint   NOT NULL CHECK (seq >= 0),
        hash  bytea    NOT NULL CHECK (octet_length(hash) = 32)
      )`);
    await db.query(`INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'))`);
    await db.query(`
      CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await db.query(`
      CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
    await db.query(`
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit_chain_head`);
    await db.query(`DROP TABLE audit_log`);
    await db.query(`DROP FUNCTION audit_log_refuse_change()`);
  }
}
