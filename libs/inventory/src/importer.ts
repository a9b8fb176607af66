import { randomUUID } from 'node:crypto';
import { GROUP_PATTERN, GROUP_RULE, type ImportCounts, type ImportStatus, MAX_IMPORT_FILE_NAME_LENGTH, type ImportSummary as WireImportSummary } from '@rackseal/api-contracts';
import type { AuditLog } from '@rackseal/audit';
import { findUnprintable, type TrustStore } from '@rackseal/ek-trust';
import { MachinesRepository } from '@rackseal/machines';
import type { Clock } from '@rackseal/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { InventoryHeaderError, parseHeader } from './columns';
import type { InventoryImportHook } from './inventory-import-hook';
import { InventoryImportsRepository } from './inventory-imports.repository';
import { CsvEncodingError, CsvLimitError, readCsv, type CsvRecord, type CsvReaderOptions } from './csv-reader';
import { type RowProblemReason, validateRow } from './row-validator';
import { type StagingBatch, toStagingBatch } from './staging-batch';
import { InventoryError } from './inventory-errors';
import { withIdleTimeout } from './upload-idle-timeout';

// What an import answers is part of the operator API: declared in its contract. Inside the server
// its instants are Dates (serialised to ISO 8601 on the way out).
export type { ImportCounts, ImportStatus } from '@rackseal/api-contracts';
export type ImportSummary = WireImportSummary<Date>;

export interface ImportOptions {
  /** Audit actor, e.g. `token:<id>`. */
  readonly actor: string;
  readonly fileName?: string;
  /** Validate everything, write nothing (no machines, no import record, no audit record). */
  readonly dryRun?: boolean;
  /** Land the valid rows even when some are refused (default: all or nothing). */
  readonly partial?: boolean;
  /** Group for rows with an empty group cell. */
  readonly defaultGroup?: string;
}

type ChangeCounts = Pick<ImportCounts, 'created' | 'updated' | 'unchanged'>;
const NO_CHANGES: ChangeCounts = { created: 0, updated: 0, unchanged: 0 };

/** Something that checks rows, answering in the staging table's shape: in-process by default, a worker pool for throughput. */
export interface RowChecker {
  check(batch: readonly CsvRecordLike[], ctx: RowCheckContext): Promise<StagingBatch>;
  close?(): Promise<void>;
}

export type CsvRecordLike = Parameters<typeof validateRow>[0];
export type RowCheckContext = Parameters<typeof validateRow>[1];

export const inProcessRowChecker: RowChecker = {
  check: (batch, ctx) => Promise.resolve(toStagingBatch(batch.map((record) => validateRow(record, ctx)))),
};

export interface InventoryImporterOptions {
  /** The trusted vendor CAs, read inside the import's transaction. */
  readonly loadTrustStore: (manager: EntityManager) => Promise<TrustStore>;
  readonly ekGraceDays: number;
  readonly caGraceDays?: number;
  /** Rows per INSERT into the staging table. Default 1000. */
  readonly batchSize?: number;
  /**
   * Characters per batch: a batch is cut early when its cells add up to more, so a batch (and the
   * slice a worker thread receives) stays small even with long records. Default 4 Mi.
   */
  readonly maxBatchChars?: number;
  /** Imports this importer runs at once; one more is refused with InventoryBusyError. Default unlimited. */
  readonly maxConcurrentImports?: number;
  /** An upload idle this long fails with UploadIdleTimeoutError. Default: no timeout. */
  readonly uploadIdleTimeoutMs?: number;
  /** Problems listed in a summary and kept on the import record. Default 1000. */
  readonly maxListedProblems?: number;
  readonly csv?: CsvReaderOptions;
  /** Called in the import's transaction after its rows landed (issue 14 item 6's pre-wraps are planned there). */
  readonly importHook?: InventoryImportHook;
  readonly rowChecker?: RowChecker;
}

/** The input is unusable as a whole (no header, bad header, a record over a limit, not UTF-8). */
export class InventoryInputError extends InventoryError {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
    code: 'inventory.invalid-file' | 'inventory.too-large' = 'inventory.invalid-file',
  ) {
    super(code, message);
    this.name = 'InventoryInputError';
  }

  /** The header's problems, one per entry, when there are any. */
  override publicMessage(): string | readonly string[] {
    return this.problems.length > 0 ? this.problems : this.message;
  }
}

/** The file is larger than the per-file limit (HTTP 413). */
export class InventoryTooLargeError extends InventoryInputError {
  constructor(
    readonly line: number,
    readonly maxBytes: number,
  ) {
    super(`line ${line}: the file is larger than ${maxBytes} bytes (INVENTORY_MAX_FILE_BYTES); nothing was imported`, [], 'inventory.too-large');
    this.name = 'InventoryTooLargeError';
  }
}

/**
 * How long a client told "busy" waits before it retries: an import of a typical rack's CSV takes
 * seconds, so a slot frees up about that often.
 */
export const BUSY_RETRY_AFTER_SECONDS = 5;

/** As many imports as allowed are running; try again when one has finished (HTTP 503). */
export class InventoryBusyError extends InventoryError {
  constructor(readonly limit: number) {
    super('inventory.busy', `${limit} inventory import(s) are already running on this control plane (INVENTORY_MAX_CONCURRENT_IMPORTS); retry shortly`, {
      retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS,
    });
    this.name = 'InventoryBusyError';
  }
}

/** The reader's refusals as the importer's: the whole file is refused, naming the limit and the line. */
function asInputError(error: unknown): unknown {
  if (error instanceof InventoryHeaderError) {
    return new InventoryInputError(error.message, error.problems);
  }
  if (error instanceof CsvLimitError) {
    return error.limit === 'file-bytes' ? new InventoryTooLargeError(error.line, error.max) : new InventoryInputError(`${error.message}; nothing was imported`);
  }
  if (error instanceof CsvEncodingError) {
    return new InventoryInputError(error.message);
  }
  return error;
}

/**
 * The CSV's records in batches, the header read first. Batches are cut by rows and by characters, so
 * neither many rows nor long ones make a batch large.
 */
class RecordBatches {
  columns: RowCheckContext['columns'] | undefined;
  rows = 0;
  private done = false;

  constructor(
    private readonly records: AsyncIterator<CsvRecord>,
    private readonly batchSize: number,
    private readonly maxBatchChars: number,
  ) {}

  /** Reads the header; InventoryInputError when there is none or it is unusable. */
  async readHeader(): Promise<void> {
    const first = await this.records.next();
    if (first.done === true) {
      this.done = true;
      throw new InventoryInputError('the file is empty: a header row is required (serial, asset_tag, hostname, group, ek_cert or ek_pub_hash)');
    }
    if (first.value.error !== undefined) {
      throw new InventoryInputError(`the CSV header (line ${first.value.line}) is not valid CSV: ${first.value.error}`);
    }
    this.columns = parseHeader(first.value.fields);
  }

  /** The next batch, or undefined at the end of the file. */
  async next(): Promise<CsvRecordLike[] | undefined> {
    const batch: CsvRecordLike[] = [];
    let chars = 0;
    while (!this.done && batch.length < this.batchSize && chars < this.maxBatchChars) {
      const result = await this.records.next();
      if (result.done === true) {
        this.done = true;
        break;
      }
      this.rows++;
      batch.push(result.value);
      for (const field of result.value.fields) {
        chars += field.length;
      }
    }
    return batch.length === 0 ? undefined : batch;
  }
}

/** The import's temporary staging table (ON COMMIT DROP): one row per CSV record, valid or not. */
const STAGING = 'inventory_import_rows';

/**
 * Imports an inventory CSV (docs/architecture.md §4.2), streaming end to end:
 *
 * 1. Records are parsed and checked per row (CSV shape, identifiers, certificate, chain to a trusted
 *    vendor CA) and written, valid or not, in batches to a temporary staging table inside one
 *    transaction. Nothing but the current batch is held in memory.
 * 2. Whole-file and database checks run in SQL on the staging table: duplicate serial / EK in the
 *    file (the first occurrence stands), EK already bound to another serial, serial bound to another
 *    EK. PostgreSQL does the bookkeeping, so memory stays flat for any file size.
 * 3. Atomic (default): any refused row → no machine is written. Partial: the valid rows land.
 *    Landing is one INSERT … ON CONFLICT (serial) DO UPDATE … WHERE something changed, so a
 *    re-import is a no-op (no new rows, no updated_at bump) and a changed hostname/group/asset tag
 *    updates the row.
 * 4. The import record and one audit record (counts only, never certificate bytes) commit with the
 *    machines. A dry run rolls everything back.
 */
export class InventoryImporter {
  private readonly batchSize: number;
  private readonly maxListed: number;
  private readonly checker: RowChecker;
  private running = 0;
  private readonly machines: MachinesRepository;
  private readonly imports: InventoryImportsRepository;

  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly options: InventoryImporterOptions,
  ) {
    // Machines are written only through their owner (libs/machines); import records through this library's.
    this.machines = new MachinesRepository(dataSource);
    this.imports = new InventoryImportsRepository(dataSource);
    this.batchSize = options.batchSize ?? 1000;
    this.maxListed = options.maxListedProblems ?? 1000;
    this.checker = options.rowChecker ?? inProcessRowChecker;
  }

  async import(source: AsyncIterable<Uint8Array | string>, options: ImportOptions): Promise<ImportSummary> {
    if (options.defaultGroup !== undefined && !GROUP_PATTERN.test(options.defaultGroup)) {
      throw new InventoryInputError(GROUP_RULE);
    }
    if (options.fileName !== undefined && options.fileName.length > MAX_IMPORT_FILE_NAME_LENGTH) {
      throw new InventoryInputError(`the file name must be at most ${MAX_IMPORT_FILE_NAME_LENGTH} characters`);
    }
    // PostgreSQL refuses NUL in text; a terminal would act on the other control characters
    if (options.fileName !== undefined && findUnprintable(options.fileName) !== undefined) {
      throw new InventoryInputError('fileName must not contain control characters');
    }
    const limit = this.options.maxConcurrentImports ?? Number.POSITIVE_INFINITY;
    if (this.running >= limit) {
      throw new InventoryBusyError(limit);
    }
    this.running++;
    const idleMs = this.options.uploadIdleTimeoutMs;
    const records = readCsv(idleMs === undefined ? source : withIdleTimeout(source, idleMs), this.options.csv)[Symbol.asyncIterator]();
    try {
      return await this.run(records, options);
    } finally {
      this.running--;
      // Stop reading (a refused file's rest is never read). Not awaited: the owner of a network
      // source decides what becomes of the connection.
      void records.return?.(undefined)?.catch(() => undefined);
    }
  }

  private async run(records: AsyncIterator<CsvRecord>, options: ImportOptions): Promise<ImportSummary> {
    const startedAt = this.clock.now();
    const idleMs = this.options.uploadIdleTimeoutMs;
    const batches = new RecordBatches(records, this.batchSize, this.options.maxBatchChars ?? 4 * 1024 * 1024);
    // The header and the first batch are read before a connection is taken: a client that opens an
    // upload and sends nothing (or only a header) holds no database connection while it waits.
    let first: CsvRecordLike[] | undefined;
    try {
      await batches.readHeader();
      first = await batches.next();
    } catch (error) {
      throw asInputError(error);
    }
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    let committed = false;
    try {
      await runner.startTransaction();
      const m = runner.manager;
      if (idleMs !== undefined) {
        // Backstop for the upload idle timeout: should anything keep this transaction open and idle
        // (a stalled read the timer missed), PostgreSQL ends the session and the pool drops it.
        await m.query(`SELECT set_config('idle_in_transaction_session_timeout', $1, true)`, [String(2 * idleMs + 5000)]);
      }
      const store = await this.options.loadTrustStore(m);
      await m.query(`
        CREATE TEMP TABLE ${STAGING} (
          line integer NOT NULL, serial text, asset_tag text, hostname text, group_name text,
          ek_pub_hash text, ek_cert bytea, ek_cert_fingerprint text, problem text, message text
        ) ON COMMIT DROP`);
      await this.stage(m, batches, first, {
        store,
        now: startedAt,
        ekGraceDays: this.options.ekGraceDays,
        caGraceDays: this.options.caGraceDays ?? 0,
        defaultGroup: options.defaultGroup,
      });
      const rows = batches.rows;
      // Indexed and analyzed once loaded: cheaper than maintaining the index row by row, and temporary
      // tables are never auto-analyzed (the planner would guess the size of a million-row file).
      await m.query(`CREATE UNIQUE INDEX ON ${STAGING} (line)`);
      await m.query(`ANALYZE ${STAGING}`);
      // Serialize imports from here on: the checks below and the upsert must see the same machines.
      await this.machines.lockForImport(m);
      await this.checkAcrossRows(m);
      const [{ invalid }] = (await m.query(`SELECT count(*)::int AS invalid FROM ${STAGING} WHERE problem IS NOT NULL`)) as [{ invalid: number }];
      const problems = (await m.query(
        `SELECT line, problem AS reason, message, serial FROM ${STAGING} WHERE problem IS NOT NULL ORDER BY line LIMIT $1`,
        [this.maxListed],
      )) as { line: number; reason: RowProblemReason; message: string; serial: string | null }[];
      const partial = options.partial === true;
      const dryRun = options.dryRun === true;
      const status: ImportStatus = invalid === 0 ? 'succeeded' : partial ? 'partial' : 'refused';
      const id = randomUUID();
      const valid = rows - invalid;
      const finishedAt = this.clock.now();
      const summarize = (counts: ChangeCounts): ImportSummary => ({
        id: dryRun ? null : id,
        status,
        dryRun,
        partial,
        fileName: options.fileName ?? null,
        counts: { rows, valid, invalid, ...counts },
        problems: problems.map((p) => ({ line: p.line, reason: p.reason, message: p.message, ...(p.serial === null ? {} : { serial: p.serial }) })),
        problemsTruncated: invalid > problems.length,
        startedAt,
        finishedAt,
      });
      if (dryRun) {
        const summary = summarize(status === 'refused' ? NO_CHANGES : await this.machines.countStagedChanges(m, STAGING));
        await runner.rollbackTransaction();
        return summary;
      }
      // The import record goes first (machines.import_id references it); its counts are what landing reports.
      const recorded = summarize(NO_CHANGES);
      await this.imports.insert(m, {
        id,
        startedBy: options.actor,
        fileName: recorded.fileName,
        partial,
        status,
        counts: { rows, valid, invalid },
        problems: recorded.problems,
        problemsTruncated: recorded.problemsTruncated,
        startedAt,
        finishedAt,
      });
      let summary = recorded;
      if (status !== 'refused') {
        const landed = await this.machines.landStagedRows(m, STAGING, id, finishedAt);
        summary = summarize({ ...landed, unchanged: valid - landed.created - landed.updated });
        await this.imports.recordLanding(m, id, summary.counts);
        await this.options.importHook?.imported({ importId: id, actor: options.actor }, m);
      }
      const { created, updated, unchanged } = summary.counts;
      await this.audit.append(
        {
          actor: options.actor,
          action: 'inventory.imported',
          subject: `inventory-import:${id}`,
          outcome: status === 'refused' ? 'refused' : 'success',
          details: {
            importId: id,
            fileName: summary.fileName,
            status,
            partial,
            rows,
            valid,
            invalid,
            created,
            updated,
            unchanged,
          },
        },
        m,
      );
      await runner.commitTransaction();
      committed = true;
      return summary;
    } catch (error) {
      if (!committed && runner.isTransactionActive) {
        await runner.rollbackTransaction();
      }
      throw error;
    } finally {
      await runner.release();
    }
  }

  /** Checks every batch (`first`, then the rest of `batches`) and writes it, valid or not, to the staging table. */
  private async stage(m: EntityManager, batches: RecordBatches, first: CsvRecordLike[] | undefined, ctx: Omit<RowCheckContext, 'columns'>): Promise<void> {
    let pendingWrite: Promise<void> = Promise.resolve();
    // Checks run ahead of the writes (up to `depth` batches), so a worker pool stays busy while the
    // main thread parses the next batch and PostgreSQL stores the previous one.
    const inflight: Promise<StagingBatch>[] = [];
    const depth = this.checker === inProcessRowChecker ? 1 : 3;
    const drainOne = async (): Promise<void> => {
      const results = await inflight.shift()!;
      await pendingWrite;
      pendingWrite = this.writeBatch(m, results);
      // surface a failed write at the next drain or at the end, not as an unhandled rejection
      pendingWrite.catch(() => undefined);
    };
    const flush = async (records: CsvRecordLike[]): Promise<void> => {
      const check = this.checker.check(records, { ...ctx, columns: batches.columns! });
      check.catch(() => undefined);
      inflight.push(check);
      while (inflight.length >= depth) {
        await drainOne();
      }
    };
    try {
      for (let batch = first; batch !== undefined; batch = await batches.next()) {
        await flush(batch);
      }
    } catch (error) {
      await Promise.allSettled([...inflight, pendingWrite]);
      throw asInputError(error);
    }
    while (inflight.length > 0) {
      await drainOne();
    }
    await pendingWrite;
  }

  private async writeBatch(m: EntityManager, batch: StagingBatch): Promise<void> {
    await m.query(
      // Certificates travel as base64 text: a third smaller than pg's hex bytea literals.
      `INSERT INTO ${STAGING}
       SELECT l, s, a, h, g, e, decode(c, 'base64'), f, p, msg
       FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
         AS u(l, s, a, h, g, e, c, f, p, msg)`,
      [
        batch.line,
        batch.serial,
        batch.assetTag,
        batch.hostname,
        batch.group,
        batch.ekPubHash,
        batch.ekCertBase64,
        batch.ekCertFingerprint,
        batch.problem,
        batch.message,
      ],
    );
  }

  /** Duplicates within the file (first occurrence stands), then conflicts with machines already known. */
  private async checkAcrossRows(m: EntityManager): Promise<void> {
    for (const [column, reason, what] of [
      ['serial', 'duplicate-serial-in-file', 'serial'],
      ['ek_pub_hash', 'duplicate-ek-in-file', 'EK'],
    ] as const) {
      // The window runs over the repeated values only: found by one hash aggregate, usually none.
      await m.query(`
        UPDATE ${STAGING} r SET problem = '${reason}', message = 'the same ${what} is on line ' || d.first
        FROM (
          SELECT line, min(line) OVER (PARTITION BY ${column}) AS first FROM ${STAGING}
          WHERE problem IS NULL AND ${column} IN (
            SELECT ${column} FROM ${STAGING} WHERE problem IS NULL GROUP BY ${column} HAVING count(*) > 1)
        ) d
        WHERE r.line = d.line AND d.line <> d.first`);
    }
    await this.machines.markStagedConflicts(m, STAGING);
  }
}
