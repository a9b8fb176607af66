import {
  AUDIT_ROW_COLUMNS,
  AuditSequencer,
  appendLeaves,
  type AuditRow,
  CheckpointSigner,
  EMPTY_BORDER,
  leafHash,
  leafOfRow,
  type NoteSigner,
  signCheckpoint,
} from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { SystemClock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import { asSuperuser } from './database';

export const TEST_AUDIT_ORIGIN = 'rackseal.test/audit';

/** An in-process sequencer with a signer of its own (fresh caches), signing under `masterKey`. */
export function testSequencer(
  ds: DataSource,
  masterKey: SecretBytes,
  options: { origin?: string; seed?: SecretBytes | null } = {},
): AuditSequencer {
  const signer = new CheckpointSigner({ origin: options.origin ?? TEST_AUDIT_ORIGIN, masterKey, signingKeySeed: options.seed ?? null });
  return new AuditSequencer(ds, signer, new SystemClock(), { maxMergeDelayMs: 1000 }, { log: () => undefined, error: () => undefined });
}

/** Leaf hashes of the sequenced records as they are stored now, recomputed from the rows (seq order). */
export async function recomputedLeafHashes(ds: DataSource): Promise<Buffer[]> {
  const rows = (await ds.query(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq IS NOT NULL ORDER BY seq`)) as AuditRow[];
  return rows.map((row) => leafHash(leafOfRow(row, Number(row.seq))!.leaf));
}

/**
 * What a superuser who rewrote records does next to hide it: recomputes every leaf and subtree node
 * from the records as they are now, stores them and the head, drops the checkpoints above `keepUpTo`
 * and signs one over the rewritten tree with `signer` (stored under `keyId`).
 */
export async function forgeTreeOverRecords(
  ds: DataSource,
  options: { keepCheckpointsUpTo: number; signer: NoteSigner; keyId: string; origin?: string },
): Promise<{ size: number; root: Buffer }> {
  const grown = appendLeaves(EMPTY_BORDER, await recomputedLeafHashes(ds));
  await asSuperuser(ds, 'DELETE FROM audit_tree_nodes');
  await asSuperuser(ds, 'INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])', [
    grown.newNodes.map((n) => n.level),
    grown.newNodes.map((n) => n.index),
    grown.newNodes.map((n) => n.hash),
  ]);
  await asSuperuser(ds, 'UPDATE audit_tree_head SET size = $1, root = $2 WHERE id = 1', [grown.border.size, grown.root]);
  await asSuperuser(ds, 'DELETE FROM audit_checkpoints WHERE tree_size > $1', [options.keepCheckpointsUpTo]);
  const time = new Date();
  const note = signCheckpoint({ origin: options.origin ?? TEST_AUDIT_ORIGIN, size: grown.border.size, rootHash: grown.root, time }, options.signer);
  await asSuperuser(ds, 'INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, key_id, note) VALUES ($1, $2, $3, $4, $5)', [
    grown.border.size,
    grown.root,
    time,
    options.keyId,
    note,
  ]);
  return { size: grown.border.size, root: grown.root };
}

/** Counts that describe the log: records, pending ones, distinct seqs, the lowest and highest seq. */
export async function logShape(ds: DataSource): Promise<{ total: number; pending: number; distinctSeqs: number; minSeq: number | null; maxSeq: number | null }> {
  const [row] = (await ds.query(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE seq IS NULL)::int AS pending, count(DISTINCT seq)::int AS "distinctSeqs",
            min(seq)::int AS "minSeq", max(seq)::int AS "maxSeq" FROM audit_log`,
  )) as { total: number; pending: number; distinctSeqs: number; minSeq: number | null; maxSeq: number | null }[];
  return row!;
}
