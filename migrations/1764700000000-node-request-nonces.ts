import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The replay store of signed node requests (libs/node-identity's ReplayGuard, backed by
 * libs/attestation's NodeRequestNonces, the table's one owner): the nonce of every accepted request
 * per credential until its timestamp leaves the window. The primary key makes `INSERT … ON CONFLICT
 * DO NOTHING` the check, on whichever replica serves the replay. Expired rows are deleted in small
 * batches by the inserts themselves (docs/decisions.md, "Node request authentication").
 *
 * Also: the live credentials of machines revoked before revoke killed them (this change) are
 * revoked now, so the table says what the guard enforces; and `machines.reattest_requested_at`
 * (libs/machines), an operator's request that the machine attest again, which the machine reads
 * from GET /node/v1/self and its next successful attestation clears.
 */
export class NodeRequestNonces1764700000000 implements MigrationInterface {
  name = 'NodeRequestNonces1764700000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE node_request_nonces (
        credential_id  text        NOT NULL REFERENCES node_credentials (credential_id),
        nonce          bytea       NOT NULL CHECK (length(nonce) = 16),
        expires_at     timestamptz NOT NULL,
        PRIMARY KEY (credential_id, nonce)
      )`);
    // The cleanup's "oldest expired first" scan.
    await db.query('CREATE INDEX node_request_nonces_expires ON node_request_nonces (expires_at)');
    await db.query(`
      UPDATE node_credentials c SET revoked_at = m.updated_at
      FROM machines m WHERE m.id = c.machine_id AND m.state = 'revoked' AND c.revoked_at IS NULL`);
    await db.query('ALTER TABLE machines ADD COLUMN reattest_requested_at timestamptz');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('ALTER TABLE machines DROP COLUMN reattest_requested_at');
    await db.query('DROP TABLE node_request_nonces');
  }
}
