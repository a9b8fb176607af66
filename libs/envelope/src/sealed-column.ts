/** Anything that runs SQL in the caller's transaction (an EntityManager, a QueryRunner). */
export interface SealedColumnDb {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/** One stored envelope: its row's key, the context it was sealed for, and the blob. */
export interface SealedValue {
  readonly key: string;
  readonly context: string;
  readonly blob: Buffer;
}

/**
 * A database column holding envelopes, as the library owning its table exposes it to a master-key
 * rotation (docs/decisions.md, "Master-key providers and rotation"): the rotation re-wraps through
 * these, so no SQL about the table lives outside its repository. Each library exports its columns;
 * libs/master-keys lists them all (a test checks every `*sealed*` bytea column of the schema is listed).
 */
export interface SealedColumn {
  /** `table.column`, for progress lines and audit records. */
  readonly name: string;
  /**
   * Up to `limit` rows whose key is above `after` (all when undefined) and whose blob names another
   * KEK ID than `kekId` (bytes 1..8 of the blob), in key order, locked FOR UPDATE in `db`'s transaction.
   */
  pendingPage(db: SealedColumnDb, kekId: Buffer, after: string | undefined, limit: number): Promise<SealedValue[]>;
  /** Replaces row `key`'s blob with `blob`; false when the row is gone (or changed meanwhile). */
  replace(db: SealedColumnDb, key: string, previous: Buffer, blob: Buffer): Promise<boolean>;
  /** How many rows' blobs name another KEK ID than `kekId`. */
  countPending(db: SealedColumnDb, kekId: Buffer): Promise<number>;
}
