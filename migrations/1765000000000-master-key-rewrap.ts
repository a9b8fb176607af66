import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A master-key rotation (`rackseal master-key rotate`, docs/decisions.md "Master-key providers and
 * rotation") re-wraps the sealed private halves of `audit_signing_keys`, a table that refused every
 * UPDATE. It now allows exactly that one: `sealed_private_key` from one blob to another, every
 * other column unchanged; DELETE and TRUNCATE stay refused. Which key signed a checkpoint, and its
 * public half, still never change.
 */
export class MasterKeyRewrap1765000000000 implements MigrationInterface {
  name = 'MasterKeyRewrap1765000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE FUNCTION audit_signing_keys_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.key_id IS DISTINCT FROM OLD.key_id OR NEW.name IS DISTINCT FROM OLD.name
           OR NEW.public_key IS DISTINCT FROM OLD.public_key OR NEW.created_at IS DISTINCT FROM OLD.created_at
           OR OLD.sealed_private_key IS NULL OR NEW.sealed_private_key IS NULL THEN
          -- The message of every other append-only refusal (audit_log_refuse_change).
          RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$`);
    await db.query('DROP TRIGGER audit_signing_keys_no_update_delete ON audit_signing_keys');
    await db.query(`
      CREATE TRIGGER audit_signing_keys_no_delete BEFORE DELETE ON audit_signing_keys
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
    await db.query(`
      CREATE TRIGGER audit_signing_keys_rewrap_only BEFORE UPDATE ON audit_signing_keys
        FOR EACH ROW EXECUTE FUNCTION audit_signing_keys_guard_update()`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TRIGGER audit_signing_keys_rewrap_only ON audit_signing_keys');
    await db.query('DROP TRIGGER audit_signing_keys_no_delete ON audit_signing_keys');
    await db.query(`
      CREATE TRIGGER audit_signing_keys_no_update_delete BEFORE UPDATE OR DELETE ON audit_signing_keys
        FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
    await db.query('DROP FUNCTION audit_signing_keys_guard_update()');
  }
}
