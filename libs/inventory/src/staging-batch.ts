import type { RowResult } from './row-validator';

/**
 * One batch of checked rows in the shape of the import's staging table: a column per field, the
 * certificate as base64 text (how it travels to PostgreSQL). Made where the rows were checked, so a
 * worker thread hands the main thread ten arrays of strings and numbers instead of an object and an
 * ArrayBuffer per row: structured clone, revival and the per-row garbage were a large share of the
 * main thread's work in a bulk import.
 */
export interface StagingBatch {
  readonly line: number[];
  readonly serial: (string | null)[];
  readonly assetTag: (string | null)[];
  readonly hostname: (string | null)[];
  readonly group: (string | null)[];
  readonly ekPubHash: (string | null)[];
  readonly ekCertBase64: (string | null)[];
  readonly ekCertFingerprint: (string | null)[];
  /** The refusal reason for rows that failed a per-row check; null for valid rows. */
  readonly problem: (string | null)[];
  readonly message: (string | null)[];
}

export function emptyStagingBatch(): StagingBatch {
  return { line: [], serial: [], assetTag: [], hostname: [], group: [], ekPubHash: [], ekCertBase64: [], ekCertFingerprint: [], problem: [], message: [] };
}

const COLUMNS = Object.keys(emptyStagingBatch()) as (keyof StagingBatch)[];

export function toStagingBatch(results: readonly RowResult[]): StagingBatch {
  const batch = emptyStagingBatch();
  for (const r of results) {
    if (r.ok) {
      const row = r.row;
      batch.line.push(row.line);
      batch.serial.push(row.serial);
      batch.assetTag.push(row.assetTag);
      batch.hostname.push(row.hostname);
      batch.group.push(row.group);
      batch.ekPubHash.push(row.ekPubHash);
      batch.ekCertBase64.push(row.ekCert === null ? null : row.ekCert.toString('base64'));
      batch.ekCertFingerprint.push(row.ekCertFingerprint);
      batch.problem.push(null);
      batch.message.push(null);
    } else {
      batch.line.push(r.line);
      batch.serial.push(r.serial ?? null);
      batch.assetTag.push(null);
      batch.hostname.push(null);
      batch.group.push(null);
      batch.ekPubHash.push(null);
      batch.ekCertBase64.push(null);
      batch.ekCertFingerprint.push(null);
      batch.problem.push(r.reason);
      batch.message.push(r.message);
    }
  }
  return batch;
}

/** The parts in order, as one batch (worker slices of one CSV batch). */
export function concatStagingBatches(parts: readonly StagingBatch[]): StagingBatch {
  if (parts.length === 1) {
    return parts[0]!;
  }
  const out = emptyStagingBatch();
  for (const part of parts) {
    for (const column of COLUMNS) {
      (out[column] as unknown[]).push(...(part[column] as unknown[]));
    }
  }
  return out;
}
