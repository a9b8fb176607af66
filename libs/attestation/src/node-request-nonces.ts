import type { ReplayGuard } from '@rackseal/node-identity';
import { type Clock, MicroBatcher } from '@rackseal/platform';
import type { DataSource } from 'typeorm';

/** Every this-many recorded nonces (per process), one batch of expired rows is deleted. */
export const NONCE_CLEANUP_EVERY = 64;
/** Expired rows deleted per batch: bounded, so the request that runs it stays cheap. */
export const NONCE_CLEANUP_BATCH = 1000;
/** Nonces recorded by one INSERT at most, and INSERTs under way at once (each holds a pool connection). */
const NONCE_BATCH = { maxBatch: 256, maxInFlight: 2 };

interface NonceInput {
  readonly credentialId: string;
  readonly nonce: Buffer;
  readonly expiresAt: Date;
}

/**
 * The control plane's ReplayGuard: the one owner of `node_request_nonces` (migration 1764700000000).
 * `INSERT … ON CONFLICT DO NOTHING RETURNING` is the check and the record in one statement, atomic on
 * any replica (PostgreSQL's unique index decides between two concurrent inserts). The requests that
 * arrive together are recorded by one such INSERT over `unnest` (a MicroBatcher: one statement and
 * one commit for the batch instead of one per request; docs/decisions.md, "Delivery throughput");
 * a nonce named twice in one batch is recorded for its first request only, as two INSERTs would.
 * Expired rows are deleted by the inserts themselves — after every NONCE_CLEANUP_EVERY recorded
 * nonces, up to NONCE_CLEANUP_BATCH of them, oldest first — so the table holds about one window of
 * accepted requests with no job to schedule. A row that outlives its expiry is harmless: a request
 * reusing its nonce is refused `stale` before the guard is asked, unless it carries a fresh
 * timestamp, i.e. a new 16-byte random nonce collided (2^-128).
 */
export class NodeRequestNonces implements ReplayGuard {
  #inserts = 0;
  readonly #batcher = new MicroBatcher<NonceInput, boolean>((inputs) => this.record(inputs), NONCE_BATCH);

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
    private readonly cleanupEvery = NONCE_CLEANUP_EVERY,
  ) {}

  remember(credentialId: string, nonce: Buffer, expiresAt: Date): Promise<boolean> {
    return this.#batcher.submit({ credentialId, nonce, expiresAt });
  }

  /** One INSERT for the batch: true for each input whose row it inserted (the first of a repeated pair only). */
  private async record(inputs: readonly NonceInput[]): Promise<boolean[]> {
    const rows = (await this.dataSource.query(
      `INSERT INTO node_request_nonces (credential_id, nonce, expires_at)
       SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[])
       ON CONFLICT (credential_id, nonce) DO NOTHING RETURNING credential_id, nonce`,
      [inputs.map((i) => i.credentialId), inputs.map((i) => i.nonce), inputs.map((i) => i.expiresAt)],
    )) as { credential_id: string; nonce: Buffer }[];
    const inserted = new Set(rows.map((r) => `${r.credential_id}:${r.nonce.toString('hex')}`));
    const recorded = inputs.map((i) => inserted.delete(`${i.credentialId}:${i.nonce.toString('hex')}`));
    const before = this.#inserts;
    this.#inserts += inputs.length;
    if (Math.floor(this.#inserts / this.cleanupEvery) > Math.floor(before / this.cleanupEvery)) {
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
