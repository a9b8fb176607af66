import type { SealedColumn } from '@rackseal/envelope';

/** Envelope contexts: each the row's primary key (docs/decisions.md, "Master-key providers and rotation"). */
export const clusterCaKeyContext = (id: string): string => `cluster-ca:${id}`;
export const secretVersionValueContext = (id: string): string => `secret-version:${id}`;
export const secretMaterialContext = (id: string): string => `secret-material:${id}`;

interface SealedRow {
  key: string;
  blob: Buffer;
}

/** Rows changed by an UPDATE … RETURNING (TypeORM's pg driver answers [rows, count]). */
function returnedRows(result: unknown): number {
  return Array.isArray(result) && Array.isArray(result[0]) ? (result[0] as unknown[]).length : 0;
}

/**
 * One sealed column of this library's tables keyed by a uuid `id`, as a master-key rotation re-wraps
 * it (libs/envelope SealedColumn). The table and column are this file's constants, never input. A
 * NULL blob (an opaque-less version) is not pending. Bytes 2..9 of a blob (1-based) are its KEK ID.
 */
function uuidKeyedColumn(table: string, column: string, contextOf: (id: string) => string): SealedColumn {
  return {
    name: `${table}.${column}`,
    async pendingPage(db, kekId, after, limit) {
      const rows = (await db.query(
        `SELECT id::text AS key, ${column} AS blob FROM ${table}
          WHERE ${column} IS NOT NULL AND substring(${column} from 2 for 8) <> $1 AND ($2::uuid IS NULL OR id > $2::uuid)
          ORDER BY id LIMIT $3 FOR UPDATE`,
        [kekId, after ?? null, limit],
      )) as SealedRow[];
      return rows.map((r) => ({ key: r.key, blob: r.blob, context: contextOf(r.key) }));
    },
    async replace(db, key, previous, blob) {
      return returnedRows(await db.query(`UPDATE ${table} SET ${column} = $3 WHERE id = $1::uuid AND ${column} = $2 RETURNING id`, [key, previous, blob])) === 1;
    },
    async countPending(db, kekId) {
      const [row] = (await db.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${column} IS NOT NULL AND substring(${column} from 2 for 8) <> $1`, [kekId])) as { n: number }[];
      return row!.n;
    },
  };
}

/** The envelopes of cluster_cas, secret_versions and secret_materials (listed in libs/master-keys). */
export const SECRETS_SEALED_COLUMNS: readonly SealedColumn[] = [
  uuidKeyedColumn('cluster_cas', 'key_sealed', clusterCaKeyContext),
  uuidKeyedColumn('secret_versions', 'value_sealed', secretVersionValueContext),
  uuidKeyedColumn('secret_materials', 'material_sealed', secretMaterialContext),
];
