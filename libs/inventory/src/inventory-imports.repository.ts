import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { ImportCounts, ImportRecordStatus, RowProblem } from '@rackseal/api-contracts';

export type { ImportRecordStatus } from '@rackseal/api-contracts';

/** One row of `inventory_imports`: what an import read, decided and wrote. */
export interface ImportRecord {
  readonly id: string;
  readonly startedBy: string;
  readonly fileName: string | null;
  readonly dryRun: boolean;
  readonly partial: boolean;
  readonly status: ImportRecordStatus;
  readonly counts: ImportCounts;
  readonly problems: readonly RowProblem[];
  readonly problemsTruncated: boolean;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
}

interface ImportRow {
  id: string;
  started_by: string;
  file_name: string | null;
  dry_run: boolean;
  partial: boolean;
  status: ImportRecordStatus;
  rows_total: number;
  rows_valid: number;
  rows_invalid: number;
  rows_created: number;
  rows_updated: number;
  rows_unchanged: number;
  problems: RowProblem[];
  problems_truncated: boolean;
  created_at: Date;
  finished_at: Date | null;
}

/**
 * The one owner of the `inventory_imports` table (the record of every CSV import, docs/architecture.md
 * §4.2). Writes run inside the importer's transaction, so a record commits with its machines and its
 * audit record.
 */
@Injectable()
export class InventoryImportsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Records an import; its change counts start at 0 until recordLanding(). */
  async insert(manager: EntityManager, record: Omit<ImportRecord, 'dryRun' | 'counts'> & { readonly counts: Pick<ImportRecord['counts'], 'rows' | 'valid' | 'invalid'> }): Promise<void> {
    await manager.query(
      `INSERT INTO inventory_imports (id, started_by, file_name, dry_run, partial, status, rows_total, rows_valid, rows_invalid,
         rows_created, rows_updated, rows_unchanged, problems, problems_truncated, created_at, finished_at)
       VALUES ($1, $2, $3, false, $4, $5, $6, $7, $8, 0, 0, 0, $9::jsonb, $10, $11, $12)`,
      [
        record.id,
        record.startedBy,
        record.fileName,
        record.partial,
        record.status,
        record.counts.rows,
        record.counts.valid,
        record.counts.invalid,
        JSON.stringify(record.problems),
        record.problemsTruncated,
        record.startedAt,
        record.finishedAt,
      ],
    );
  }

  /** What landing the machines did. */
  async recordLanding(manager: EntityManager, id: string, counts: { created: number; updated: number; unchanged: number }): Promise<void> {
    await manager.query('UPDATE inventory_imports SET rows_created = $2, rows_updated = $3, rows_unchanged = $4 WHERE id = $1', [
      id,
      counts.created,
      counts.updated,
      counts.unchanged,
    ]);
  }

  async findById(id: string): Promise<ImportRecord | undefined> {
    const [row] = (await this.dataSource.query('SELECT * FROM inventory_imports WHERE id = $1', [id])) as ImportRow[];
    if (row === undefined) {
      return undefined;
    }
    return {
      id: row.id,
      startedBy: row.started_by,
      fileName: row.file_name,
      dryRun: row.dry_run,
      partial: row.partial,
      status: row.status,
      counts: {
        rows: row.rows_total,
        valid: row.rows_valid,
        invalid: row.rows_invalid,
        created: row.rows_created,
        updated: row.rows_updated,
        unchanged: row.rows_unchanged,
      },
      problems: row.problems,
      problemsTruncated: row.problems_truncated,
      startedAt: row.created_at,
      finishedAt: row.finished_at,
    };
  }
}
