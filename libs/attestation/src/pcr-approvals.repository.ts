import { Injectable } from '@nestjs/common';
import type { SealedColumn } from '@rackseal/envelope';
import { DataSource, type EntityManager } from 'typeorm';

/** The one purpose `pcr_signing_keys` holds a key for. */
const PCR_APPROVAL_PURPOSE = 'pcr-approval';

/** Envelope context of the signing key's private key: its row's primary key (docs/decisions.md, "Master-key providers and rotation"). */
export const pcrSigningKeyContext = (id: string): string => `pcr-signing-key:${id}`;

/** The PCR-approval signing key as stored. */
export interface StoredPcrSigningKey {
  readonly id: string;
  readonly algorithm: string;
  /** TPM2B_PUBLIC. */
  readonly publicArea: Buffer;
  readonly name: Buffer;
  readonly keySealed: Buffer;
  readonly createdAt: Date;
  readonly createdBy: string;
}

/** One signed approval. */
export interface StoredPcrApproval {
  readonly id: string;
  readonly group: string;
  readonly epoch: number;
  readonly label: string;
  readonly approvedPolicy: Buffer;
  /** Marshalled TPMT_SIGNATURE. */
  readonly signature: Buffer;
  readonly signingKeyId: string;
  readonly signedAt: Date;
  readonly signedBy: string;
}

interface KeyRow {
  id: string;
  algorithm: string;
  public_area: Buffer;
  name: Buffer;
  key_sealed: Buffer;
  created_at: Date;
  created_by: string;
}

interface ApprovalRow {
  id: string;
  group_name: string;
  epoch: number;
  label: string;
  approved_policy: Buffer;
  signature: Buffer;
  signing_key_id: string;
  signed_at: Date;
  signed_by: string;
}

const APPROVAL_COLUMNS = 'id, group_name, epoch, label, approved_policy, signature, signing_key_id, signed_at, signed_by';

/**
 * The one owner of `pcr_signing_keys`, `pcr_approval_epochs` and `pcr_approvals` (migration
 * 1765300000000): the control plane's PCR-approval signing key, each group's approval epoch and the
 * signed approvals. PcrApprovals decides what is signed; this only reads and writes rows.
 */
@Injectable()
export class PcrApprovalsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async signingKey(manager?: EntityManager): Promise<StoredPcrSigningKey | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(
      'SELECT id, algorithm, public_area, name, key_sealed, created_at, created_by FROM pcr_signing_keys WHERE purpose = $1',
      [PCR_APPROVAL_PURPOSE],
    )) as KeyRow[];
    return row === undefined
      ? undefined
      : { id: row.id, algorithm: row.algorithm, publicArea: row.public_area, name: row.name, keySealed: row.key_sealed, createdAt: row.created_at, createdBy: row.created_by };
  }

  /**
   * Inserts the signing key unless one exists: true when this row was written. A concurrent first
   * use's insert waits for the other transaction and, its purpose taken, writes nothing.
   */
  async insertSigningKeyIfAbsent(key: StoredPcrSigningKey, manager: EntityManager): Promise<boolean> {
    const result = (await manager.query(
      `INSERT INTO pcr_signing_keys (id, purpose, algorithm, public_area, name, key_sealed, created_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (purpose) DO NOTHING RETURNING id`,
      [key.id, PCR_APPROVAL_PURPOSE, key.algorithm, key.publicArea, key.name, key.keySealed, key.createdAt, key.createdBy],
    )) as unknown[];
    return result.length === 1;
  }

  /** The group's current approval epoch: 1 until a withdrawal bumped it. */
  async epoch(group: string, manager?: EntityManager): Promise<number> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT epoch FROM pcr_approval_epochs WHERE group_name = $1', [group])) as { epoch: number }[];
    return row?.epoch ?? 1;
  }

  /** Moves the group to the next epoch; answers it. */
  async bumpEpoch(group: string, by: string, at: Date, manager: EntityManager): Promise<number> {
    const [row] = (await manager.query(
      `INSERT INTO pcr_approval_epochs (group_name, epoch, updated_at, updated_by) VALUES ($1, 2, $2, $3)
       ON CONFLICT (group_name) DO UPDATE SET epoch = pcr_approval_epochs.epoch + 1, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
       RETURNING epoch`,
      [group, at, by],
    )) as { epoch: number }[];
    return row!.epoch;
  }

  /** The group's approvals of `epoch`, in the order they were signed. */
  async approvals(group: string, epoch: number, manager?: EntityManager): Promise<StoredPcrApproval[]> {
    const rows = (await (manager ?? this.dataSource).query(
      `SELECT ${APPROVAL_COLUMNS} FROM pcr_approvals WHERE group_name = $1 AND epoch = $2 ORDER BY signed_at, label, id`,
      [group, epoch],
    )) as ApprovalRow[];
    return rows.map(toApproval);
  }

  async insertApproval(approval: StoredPcrApproval, manager: EntityManager): Promise<void> {
    await manager.query(`INSERT INTO pcr_approvals (${APPROVAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
      approval.id,
      approval.group,
      approval.epoch,
      approval.label,
      approval.approvedPolicy,
      approval.signature,
      approval.signingKeyId,
      approval.signedAt,
      approval.signedBy,
    ]);
  }

  /** A kept approval whose allowed set was renamed: the label follows, the signature stays. */
  async relabel(id: string, label: string, manager: EntityManager): Promise<void> {
    await manager.query('UPDATE pcr_approvals SET label = $2 WHERE id = $1', [id, label]);
  }
}

function toApproval(r: ApprovalRow): StoredPcrApproval {
  return {
    id: r.id,
    group: r.group_name,
    epoch: r.epoch,
    label: r.label,
    approvedPolicy: r.approved_policy,
    signature: r.signature,
    signingKeyId: r.signing_key_id,
    signedAt: r.signed_at,
    signedBy: r.signed_by,
  };
}

/** Rows changed by an UPDATE … RETURNING (TypeORM's pg driver answers [rows, count]). */
function returnedRows(result: unknown): number {
  return Array.isArray(result) && Array.isArray(result[0]) ? (result[0] as unknown[]).length : 0;
}

/**
 * The envelope of `pcr_signing_keys`, as a master-key rotation re-wraps it (libs/envelope
 * SealedColumn; listed in libs/master-keys). Bytes 2..9 of a blob (SQL substring is 1-based) are
 * its KEK ID.
 */
export const PCR_APPROVALS_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    name: 'pcr_signing_keys.key_sealed',
    async pendingPage(db, kekId, after, limit) {
      const rows = (await db.query(
        `SELECT id::text AS key, key_sealed AS blob FROM pcr_signing_keys
          WHERE substring(key_sealed from 2 for 8) <> $1 AND ($2::uuid IS NULL OR id > $2::uuid)
          ORDER BY id LIMIT $3 FOR UPDATE`,
        [kekId, after ?? null, limit],
      )) as { key: string; blob: Buffer }[];
      return rows.map((r) => ({ key: r.key, blob: r.blob, context: pcrSigningKeyContext(r.key) }));
    },
    async replace(db, key, previous, blob) {
      return returnedRows(await db.query('UPDATE pcr_signing_keys SET key_sealed = $3 WHERE id = $1::uuid AND key_sealed = $2 RETURNING id', [key, previous, blob])) === 1;
    },
    async countPending(db, kekId) {
      const [row] = (await db.query('SELECT count(*)::int AS n FROM pcr_signing_keys WHERE substring(key_sealed from 2 for 8) <> $1', [kekId])) as { n: number }[];
      return row!.n;
    },
  },
];
