import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The dashboard's browser sessions (issue 16), owned by libs/api-tokens (OperatorSessions): the
 * SHA-256 of each session secret (the cookie), never the secret; the token it was made from, whose
 * scopes and revocation it follows on every request; a fixed expiry.
 */
export class OperatorSessions1765800000000 implements MigrationInterface {
  name = 'OperatorSessions1765800000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE operator_sessions (
        id            uuid        PRIMARY KEY,
        session_hash  bytea       NOT NULL UNIQUE CHECK (octet_length(session_hash) = 32),
        token_id      uuid        NOT NULL REFERENCES api_tokens (id),
        created_at    timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL CHECK (expires_at > created_at)
      )`);
    // Sign-in prunes expired sessions by this index.
    await db.query('CREATE INDEX operator_sessions_expires_at_idx ON operator_sessions (expires_at)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE operator_sessions');
  }
}
