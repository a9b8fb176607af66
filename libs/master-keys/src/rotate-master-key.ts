import { randomBytes } from 'node:crypto';
import type { AuditLog } from '@rackseal/audit';
import { EnvelopeError, type MasterKeys, rewrapEnvelope, type SealedColumn } from '@rackseal/envelope';
import type { DataSource } from 'typeorm';

export interface RotationOptions {
  /** Rows per transaction. */
  readonly batchSize: number;
  /** Who runs it, for the audit records (e.g. `cli:<login>`). */
  readonly actor: string;
  /** Called after each committed batch: the CLI's progress line (a failure here stops the rotation, the batch stays committed). */
  readonly onBatch?: (progress: BatchProgress) => void | Promise<void>;
  readonly random?: (length: number) => Buffer;
}

export interface BatchProgress {
  readonly column: string;
  /** Rows of this column re-wrapped so far in this run (this batch included). */
  readonly rewrapped: number;
  /** Rows of this column that were not under the new key when this run started. */
  readonly pendingAtStart: number;
}

export interface ColumnReport {
  readonly column: string;
  readonly rewrapped: number;
  /** Rows that no key of the process opens (another master key, a moved or modified blob): left as they are. */
  readonly refused: readonly { key: string; reason: string }[];
  /** Rows still not under the new key when the run ended (refused ones, and rows sealed meanwhile under an old key). */
  readonly remaining: number;
}

export interface RotationReport {
  /** The key every blob is moved to: its description and KEK ID. */
  readonly to: { readonly description: string; readonly kekId: string };
  readonly columns: readonly ColumnReport[];
  /** True when every sealed row of every column is under the new key: the previous keys may go. */
  readonly done: boolean;
}

/** At most this many refused rows are named in a report and its audit record. */
const NAMED_REFUSALS = 20;

/**
 * Re-wraps every envelope of `columns` to `keys.current` (docs/decisions.md, "Master-key providers
 * and rotation"): column by column, `batchSize` rows per transaction, each row locked, re-wrapped
 * with libs/envelope's rewrapEnvelope (only the DEK wrap changes) and written back by its owning
 * library's SealedColumn. Resumable by construction: a row already under the new KEK ID is never
 * read again, so a run killed anywhere leaves committed batches done and the rest as they were,
 * and the next run takes up the rest. A row no key opens is reported, not touched. Audited at start
 * and end (counts, key descriptions and KEK IDs; never key material).
 */
export async function rotateMasterKey(
  dataSource: DataSource,
  audit: AuditLog,
  columns: readonly SealedColumn[],
  keys: MasterKeys,
  options: RotationOptions,
): Promise<RotationReport> {
  const to = keys.current;
  const random = options.random ?? randomBytes;
  const toText = { description: to.description, kekId: to.kekId.toString('hex') };
  const subject = `master-key:${toText.kekId}`;
  const pendingAtStart = new Map<string, number>();
  for (const column of columns) {
    pendingAtStart.set(column.name, await column.countPending(dataSource.manager, to.kekId));
  }
  await audit.append({
    actor: options.actor,
    action: 'master-key.rotation-started',
    subject,
    outcome: 'success',
    details: {
      to: toText.description,
      previous: keys.previous.map((key) => `${key.description} ${key.kekId.toString('hex')}`),
      // Arrays of {column, …}: a column name such as `secret_sealed` may not be a details key (no secret-looking keys).
      columns: [...pendingAtStart].map(([column, pending]) => ({ column, pending })),
    },
  });

  const reports: ColumnReport[] = [];
  try {
    for (const column of columns) {
      let after: string | undefined;
      let rewrapped = 0;
      const refused: { key: string; reason: string }[] = [];
      for (;;) {
        const page = await dataSource.transaction(async (m) => {
          const rows = await column.pendingPage(m, to.kekId, after, options.batchSize);
          for (const row of rows) {
            let blob: Buffer | undefined;
            try {
              blob = rewrapEnvelope(keys, to, row.context, row.blob, random);
            } catch (error) {
              if (!(error instanceof EnvelopeError)) {
                throw error;
              }
              refused.push({ key: row.key, reason: error.message });
              continue;
            }
            if (blob !== undefined && (await column.replace(m, row.key, row.blob, blob))) {
              rewrapped++;
            }
          }
          return rows;
        });
        if (page.length === 0) {
          break;
        }
        after = page[page.length - 1]!.key;
        await options.onBatch?.({ column: column.name, rewrapped, pendingAtStart: pendingAtStart.get(column.name) ?? 0 });
        if (page.length < options.batchSize) {
          break;
        }
      }
      reports.push({ column: column.name, rewrapped, refused, remaining: await column.countPending(dataSource.manager, to.kekId) });
    }
  } catch (error) {
    await audit.append({
      actor: options.actor,
      action: 'master-key.rotation-finished',
      subject,
      outcome: 'failure',
      details: { to: toText.description, reason: error instanceof Error ? error.message.slice(0, 500) : 'unknown', columns: reports.map((r) => ({ column: r.column, rewrapped: r.rewrapped })) },
    });
    throw error;
  }
  const done = reports.every((r) => r.remaining === 0);
  await audit.append({
    actor: options.actor,
    action: 'master-key.rotation-finished',
    subject,
    outcome: done ? 'success' : 'failure',
    details: {
      to: toText.description,
      done,
      columns: reports.map((r) => ({ column: r.column, rewrapped: r.rewrapped, remaining: r.remaining })),
      refused: reports.flatMap((r) => r.refused.map((x) => `${r.column} ${x.key}: ${x.reason}`)).slice(0, NAMED_REFUSALS),
    },
  });
  return { to: toText, columns: reports, done };
}
