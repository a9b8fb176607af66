import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Operator bearer tokens: only the SHA-256 of each token is stored. */
export class CreateApiTokens1763800000000 implements MigrationInterface {
  name = 'CreateApiTokens1763800000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE api_tokens (
        id            uuid        PRIMARY KEY,
        name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
        token_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
        scopes        text[]      NOT NULL CHECK (cardinality(scopes) > 0),
        created_at    timestamptz NOT NULL,
        created_by    text        NOT NULL,
        revoked_at    timestamptz,
        last_used_at  timestamptz
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE api_tokens');
  }
}
