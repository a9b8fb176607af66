import type { ReplayGuard } from '@rackseal/node-identity';
import type { Clock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';

/** Every this-many recorded nonces (per process), one batch of expired rows is deleted. */
export const NONCE_CLEANUP_EVERY = 64;
/** Expired rows deleted per batch: bounded, so the request that runs it stays cheap. */
export const NONCE_CLEANUP_BATCH = 1000;

/**
 * The control plane's ReplayGuard: the one owner of `node_request_nonces` (migration 1764700000000).
 * `INSERT … ON CONFLICT DO NOTHING RETURNING` is the check and the record in one statement, atomic on
 * any replica (PostgreSQL's unique index decides between two concurrent inserts). Expired rows are
 * deleted by the inserts themselves — every NONCE_CLEANUP_EVERY-th deletes up to
 * NONCE_CLEANUP_BATCH of them, oldest first — so the table holds about one window of accepted
 * requests with no job to schedule: each accepted request pays 1/64 of one bounded DELETE, and
 * at 64 inserts per 1000 deletions the cleanup outpaces any request rate. A row that outlives its
 * expiry is harmless: a request reusing its nonce is refused `stale` before the guard is asked,
 * unless it carries a fresh timestamp, i.e. a new 16-byte random nonce collided (2^-128).
 */
export class NodeRequestNonces implements ReplayGuard {
  #inserts = 0;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly cleanupEvery = NONCE_CLEANUP_EVERY,
  ) {}

  async remember(credentialId: string, nonce: Buffer, expiresAt: Date): Promise<boolean> {
    const rows = (await this.dataSource.query(
      'INSERT INTO node_request_nonces (credential_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT (credential_id, nonce) DO NOTHING RETURNING 1 AS recorded',
      [credentialId, nonce, expiresAt],
    )) as unknown[];
    const recorded = rows.length === 1;
    this.#inserts += 1;
    if (this.#inserts % this.cleanupEvery === 0) {
      await this.deleteExpired();
    }
    return recorded;
  }

  /** Deletes up to NONCE_CLEANUP_BATCH rows expired by the clock's now; returns how many. */
  async deleteExpired(): Promise<number> {
    const [, deleted] = (await this.dataSource.query(
      `DELETE FROM node_request_nonces WHERE ctid IN (
         SELECT ctid FROM node_request_nonces WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2
       )`,
      [this.clock.now(), NONCE_CLEANUP_BATCH],
    )) as [unknown[], number];
    return deleted;
  }
}
