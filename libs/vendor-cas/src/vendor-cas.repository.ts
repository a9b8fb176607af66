import type { CaKind } from '@rackseal/api-contracts';
import type { DataSource, EntityManager } from 'typeorm';
import { VendorCaEntity } from './vendor-ca.entity';

/** What a stored CA is now, as an upload of the same certificate reports it. */
export interface StoredCaFlags {
  readonly enabled: boolean;
  readonly isAnchor: boolean;
}

/** A row of `vendor_cas` to insert: everything but what the table defaults. */
export interface NewVendorCaRow {
  readonly id: string;
  readonly fingerprint: string;
  readonly der: Buffer;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly kind: CaKind;
  readonly isAnchor: boolean;
  readonly source: string | null;
  readonly addedAt: Date;
  readonly addedBy: string;
}

/** The columns the trust store is built from. */
export interface TrustStoreRow {
  readonly fingerprint: string;
  readonly der: Buffer;
  readonly isAnchor: boolean;
  readonly enabled: boolean;
  readonly source: string | null;
}

/**
 * The one place with SQL for the `vendor_cas` table (docs/architecture.md §9). Every method takes
 * the EntityManager (or DataSource) to run on, so VendorCas decides the transactions and the audit
 * record joins them.
 */
export const vendorCaRepository = {
  /** What trustStoreRows answers without the certificates: enough to tell whether a built store is still current. */
  async trustStoreFlags(db: EntityManager | DataSource): Promise<Omit<TrustStoreRow, 'der'>[]> {
    const rows = (await db.query('SELECT fingerprint, is_anchor, enabled, source FROM vendor_cas ORDER BY added_at, fingerprint')) as {
      fingerprint: string;
      is_anchor: boolean;
      enabled: boolean;
      source: string | null;
    }[];
    return rows.map((r) => ({ fingerprint: r.fingerprint, isAnchor: r.is_anchor, enabled: r.enabled, source: r.source }));
  },

  /** Every stored CA, disabled ones included, in the order they were added. */
  async trustStoreRows(db: EntityManager | DataSource): Promise<TrustStoreRow[]> {
    const rows = (await db.query('SELECT fingerprint, der, is_anchor, enabled, source FROM vendor_cas ORDER BY added_at, fingerprint')) as {
      fingerprint: string;
      der: Buffer;
      is_anchor: boolean;
      enabled: boolean;
      source: string | null;
    }[];
    return rows.map((r) => ({ fingerprint: r.fingerprint, der: r.der, isAnchor: r.is_anchor, enabled: r.enabled, source: r.source }));
  },

  /** The stored flags of those of `fingerprints` that are stored. */
  async flagsOf(m: EntityManager, fingerprints: readonly string[]): Promise<Map<string, StoredCaFlags>> {
    const rows = (await m.query('SELECT fingerprint, enabled, is_anchor FROM vendor_cas WHERE fingerprint = ANY($1)', [fingerprints])) as {
      fingerprint: string;
      enabled: boolean;
      is_anchor: boolean;
    }[];
    return new Map(rows.map((r) => [r.fingerprint, { enabled: r.enabled, isAnchor: r.is_anchor }]));
  },

  /** Inserts an enabled CA; false when a concurrent upload stored the same fingerprint first (ON CONFLICT DO NOTHING). */
  async insertIfNew(m: EntityManager, row: NewVendorCaRow): Promise<boolean> {
    const inserted = (await m.query(
      `INSERT INTO vendor_cas (id, fingerprint, der, subject, issuer, serial, not_before, not_after, kind, is_anchor, enabled, source, added_at, added_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11, $12, $13)
       ON CONFLICT (fingerprint) DO NOTHING RETURNING id`,
      [row.id, row.fingerprint, row.der, row.subject, row.issuer, row.serial, row.notBefore, row.notAfter, row.kind, row.isAnchor, row.source, row.addedAt, row.addedBy],
    )) as unknown[];
    return inserted.length > 0;
  },

  /** Stored CAs, enabled only unless asked: roots first, then by subject and fingerprint. */
  list(m: EntityManager, includeDisabled: boolean): Promise<VendorCaEntity[]> {
    return m.getRepository(VendorCaEntity).find({
      where: includeDisabled ? {} : { enabled: true },
      order: { kind: 'DESC', subject: 'ASC', fingerprint: 'ASC' },
    });
  },

  /** Up to `limit` stored fingerprints starting with `prefix` (hex digits only: LIKE sees no wildcard but the final %). */
  async fingerprintsStartingWith(m: EntityManager, prefix: string, limit: number): Promise<string[]> {
    const rows = (await m.query('SELECT fingerprint FROM vendor_cas WHERE fingerprint LIKE $1 ORDER BY fingerprint LIMIT $2', [`${prefix}%`, limit])) as {
      fingerprint: string;
    }[];
    return rows.map((r) => r.fingerprint);
  },

  /** The row with this fingerprint or id, locked for update when `lock`. */
  async findOne(m: EntityManager, where: { fingerprint: string } | { id: string }, lock: boolean): Promise<VendorCaEntity | undefined> {
    const row = await m.getRepository(VendorCaEntity).findOne({ where, ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}) });
    return row ?? undefined;
  },

  async update(m: EntityManager, id: string, changes: Partial<Pick<VendorCaEntity, 'enabled' | 'disabledAt' | 'disabledBy' | 'isAnchor'>>): Promise<void> {
    await m.getRepository(VendorCaEntity).update({ id }, changes);
  },
};
