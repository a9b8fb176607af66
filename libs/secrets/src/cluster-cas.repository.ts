import { Injectable } from '@nestjs/common';
import type { ClusterCaKind, ClusterCaView } from '@rackseal/api-contracts';
import { DataSource, type EntityManager } from 'typeorm';

/** One row of cluster_cas: the view and the sealed key. */
export interface StoredClusterCa extends Omit<ClusterCaView<Date>, 'certificate'> {
  readonly id: string;
  readonly certificatePem: string;
  readonly keySealed: Buffer;
}

interface CaRow {
  id: string;
  kind: ClusterCaKind;
  origin: 'created' | 'imported';
  certificate_pem: string;
  fingerprint: string;
  subject: string;
  key_algorithm: string;
  not_before: Date;
  not_after: Date;
  key_sealed: Buffer;
  created_at: Date;
  created_by: string;
}

const COLUMNS = 'id, kind, origin, certificate_pem, fingerprint, subject, key_algorithm, not_before, not_after, key_sealed, created_at, created_by';

/** `cluster_cas` (migration 1765200000000): one CA per kind, its key sealed. */
@Injectable()
export class ClusterCasRepository {
  constructor(private readonly dataSource: DataSource) {}

  async find(kind: ClusterCaKind, manager?: EntityManager): Promise<StoredClusterCa | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${COLUMNS} FROM cluster_cas WHERE kind = $1`, [kind])) as CaRow[];
    return row === undefined ? undefined : toCa(row);
  }

  /**
   * Inserts the kind's CA unless one exists (a concurrent first use or import got there first):
   * true when this row was written. The unique kind makes the loser's insert a no-op.
   */
  async insertIfAbsent(ca: StoredClusterCa, manager: EntityManager): Promise<boolean> {
    const result = (await manager.query(
      `INSERT INTO cluster_cas (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (kind) DO NOTHING RETURNING id`,
      [ca.id, ca.kind, ca.origin, ca.certificatePem, ca.fingerprint, ca.subject, ca.keyAlgorithm, ca.notBefore, ca.notAfter, ca.keySealed, ca.createdAt, ca.createdBy],
    )) as unknown[];
    return result.length === 1;
  }
}

function toCa(r: CaRow): StoredClusterCa {
  return {
    id: r.id,
    kind: r.kind,
    origin: r.origin,
    certificatePem: r.certificate_pem,
    fingerprint: r.fingerprint,
    subject: r.subject,
    keyAlgorithm: r.key_algorithm,
    notBefore: r.not_before,
    notAfter: r.not_after,
    keySealed: r.key_sealed,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}
