/**
 * The inventory surface of the operator API (docs/architecture.md §4.2): POST /v1/inventory/imports,
 * GET /v1/inventory/imports/:id and GET /v1/machines. libs/inventory validates with these, the
 * control plane's DTOs implement these, the CLI reads its answers as these.
 */

/**
 * Serials (and asset tags): an ASCII letter or digit first, then letters, digits and `. _ : / # -`,
 * at most 128. Deliberately narrow: a leading `= + - @` (spreadsheet formula prefixes), quotes,
 * semicolons, spaces and control characters are refused rather than stored, so nothing read back
 * from the inventory can be interpreted by a spreadsheet or a shell. The operator API names a
 * machine by its serial too (GET /v1/machines/:ref).
 */
export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,127}$/;

/**
 * Group names: a lowercase letter or digit first, then lowercase letters, digits, `. _ -`; at most
 * 63 characters (a DNS label's length, so a group can name a host-name suffix or a queue).
 */
export const GROUP_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** What GROUP_PATTERN says, in words, for the 400 that refuses a `group` parameter. */
export const GROUP_RULE = 'group must be 1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -';

/**
 * Why a row was refused: the one list (libs/inventory's checks, the report, the OpenAPI enum and the
 * README table follow it). Those up to `untrusted-chain` are decided per row; the rest need the
 * whole file or the database.
 */
export const ROW_PROBLEM_REASONS = [
  'bad-csv',
  'control-character',
  'invalid-serial',
  'invalid-asset-tag',
  'invalid-hostname',
  'invalid-group',
  'invalid-ek-pub-hash',
  'missing-ek',
  'bad-cert',
  'bad-intermediates',
  'ek-pub-hash-mismatch',
  'untrusted-chain',
  'duplicate-serial-in-file',
  'duplicate-ek-in-file',
  'ek-bound-to-other-serial',
  'serial-bound-to-other-ek',
] as const;
export type RowProblemReason = (typeof ROW_PROBLEM_REASONS)[number];

/** How an import ended: every row landed, the valid rows landed (`partial`), or nothing landed. */
export const IMPORT_STATUSES = ['succeeded', 'partial', 'refused'] as const;
export type ImportStatus = (typeof IMPORT_STATUSES)[number];
/**
 * How an import record stands: an ended import's status, or `running` (still reading) or `failed`
 * (the process stopped before it ended: nothing landed).
 */
export const IMPORT_RECORD_STATUSES = ['running', ...IMPORT_STATUSES, 'failed'] as const;
export type ImportRecordStatus = (typeof IMPORT_RECORD_STATUSES)[number];

/** The longest file name an import record keeps (`fileName`). */
export const MAX_IMPORT_FILE_NAME_LENGTH = 255;

/** One refused row of an import. */
export interface RowProblem {
  /** The line the row starts on (the header is line 1). */
  readonly line: number;
  readonly reason: RowProblemReason;
  readonly message: string;
  /** The row's serial when it could be read (as given, at most 128 characters; unprintable characters written as \uXXXX). */
  readonly serial?: string;
}

export interface ImportCounts {
  /** Data rows read (header and blank lines excluded). */
  readonly rows: number;
  readonly valid: number;
  readonly invalid: number;
  /** Machines created / changed / already identical (0 when an atomic import was refused). */
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
}

/**
 * An import's summary. `Time` is how an instant travels: an ISO 8601 string on the wire (the
 * default), a Date inside the server before it is serialised.
 */
export interface ImportSummary<Time = string> {
  /** The import record's id; null for a dry run (which writes nothing). */
  readonly id: string | null;
  readonly status: ImportStatus;
  readonly dryRun: boolean;
  readonly partial: boolean;
  readonly fileName: string | null;
  readonly counts: ImportCounts;
  /** Problems in line order, at most 1000 of them. */
  readonly problems: readonly RowProblem[];
  /** True when there were more problems than listed (`counts.invalid` has them all). */
  readonly problemsTruncated: boolean;
  readonly startedAt: Time;
  readonly finishedAt: Time;
}

/** GET /v1/inventory/imports/:id: the recorded summary, with who ran it. */
export interface RecordedImport extends Omit<ImportSummary, 'status'> {
  readonly status: ImportRecordStatus;
  /** The audit actor that ran the import, e.g. `token:<id>`. */
  readonly startedBy: string;
}
