import {
  certificateEkPubHash,
  EkCertificateError,
  findUnprintable,
  readCertificate,
  type TrustStore,
  UNPRINTABLE_CLASS,
  unwrapCertificates,
  verifyEkChain,
} from '@rackseal/ek-trust';
import { GROUP_PATTERN, type RowProblem, type RowProblemReason, SERIAL_PATTERN } from '@rackseal/api-contracts';
import { type ColumnMap, INVENTORY_COLUMNS, type InventoryColumn } from './columns';
import type { CsvRecord } from './csv-reader';

// The refusal reasons, the group rule and a problem's shape are part of the operator API (the
// import summary): declared in its contract, re-exported for this library's users.
export { GROUP_PATTERN, ROW_PROBLEM_REASONS, type RowProblem, type RowProblemReason, SERIAL_PATTERN } from '@rackseal/api-contracts';

/** A problem's message is cut here: a report lists up to 1000 of them, and its size must not depend on the file. */
export const MAX_PROBLEM_MESSAGE_CHARS = 500;

/** A row that passed every per-row check, ready to be compared with the rest of the file and the DB. */
export interface ValidRow {
  readonly line: number;
  readonly serial: string;
  readonly assetTag: string | null;
  readonly hostname: string | null;
  readonly group: string | null;
  readonly ekPubHash: string;
  /** DER as read (NV header / padding removed); null for an `ek_pub_hash`-only row. */
  readonly ekCert: Buffer | null;
  readonly ekCertFingerprint: string | null;
}

export type RowResult = { readonly ok: true; readonly row: ValidRow } | ({ readonly ok: false } & RowProblem);

export interface RowValidationContext {
  readonly columns: ColumnMap;
  readonly store: TrustStore;
  readonly now: Date;
  readonly ekGraceDays: number;
  readonly caGraceDays: number;
  /** `group` for rows whose group cell is empty (or when the file has no group column). */
  readonly defaultGroup?: string;
}

/** RFC 1123 host name (labels of letters, digits and inner hyphens), stored lowercase. */
export const HOSTNAME_PATTERN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const EK_PUB_HASH_PATTERN = /^[0-9a-f]{64}$/;

/**
 * Unprintable characters (ek-trust's one definition, UNPRINTABLE_CLASS: C0 with NUL, DEL, C1, line
 * separators, invisible format characters such as bidi controls and zero-width spaces) make no sense in any cell: PostgreSQL text and jsonb cannot
 * hold NUL, and the rest would act on an operator's terminal or reorder what it shows. Tab, CR and
 * LF are allowed only where PEM text may sit.
 */
const PEM_COLUMNS: ReadonlySet<InventoryColumn> = new Set(['ek_cert', 'ek_intermediates']);
const PEM_WHITESPACE = /[\t\r\n]/g;
const UNPRINTABLE_GLOBAL = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'gu');

/** Unprintable characters written as \uXXXX, so a value can be shown (and stored) safely. */
export function escapeUnprintable(value: string): string {
  return value.replace(UNPRINTABLE_GLOBAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The first cell with a control character that has no business there, named by its column. */
function controlCharacterProblem(record: CsvRecord, columns: ColumnMap): string | undefined {
  for (const column of INVENTORY_COLUMNS) {
    const index = columns[column];
    // trimmed, as the checks below read it: surrounding blanks and line ends are dropped, not refused
    const value = index === undefined ? undefined : record.fields[index]?.trim();
    if (value === undefined) {
      continue;
    }
    // PEM whitespace blanked one for one, so the index still points into the cell
    const found = findUnprintable(PEM_COLUMNS.has(column) ? value.replace(PEM_WHITESPACE, ' ') : value);
    if (found !== undefined) {
      const code = `U+${found.character.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
      return `${column} contains a control character (${code} at character ${found.index + 1})`;
    }
  }
  return undefined;
}

function describe(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

function cell(record: CsvRecord, index: number | undefined): string {
  return index === undefined ? '' : (record.fields[index] ?? '').trim();
}

export function validateRow(record: CsvRecord, ctx: RowValidationContext): RowResult {
  const { line } = record;
  const { columns } = ctx;
  const rawSerial = columns.serial === undefined ? '' : (record.fields[columns.serial] ?? '').trim();
  const serialForReport = rawSerial === '' ? undefined : escapeUnprintable(rawSerial.slice(0, 128));
  const refuse = (reason: RowProblemReason, message: string): RowResult => ({
    ok: false,
    line,
    reason,
    // a certificate's names (in chain messages) are the uploader's text: bounded like everything else
    message: message.length > MAX_PROBLEM_MESSAGE_CHARS ? `${message.slice(0, MAX_PROBLEM_MESSAGE_CHARS)}…` : message,
    ...(serialForReport === undefined ? {} : { serial: serialForReport }),
  });
  if (record.error !== undefined) {
    return refuse('bad-csv', record.error);
  }
  if (record.fields.length !== columns.count) {
    return refuse('bad-csv', `expected ${columns.count} fields, found ${record.fields.length}`);
  }
  const control = controlCharacterProblem(record, columns);
  if (control !== undefined) {
    return refuse('control-character', control);
  }
  const serial = rawSerial;
  if (!SERIAL_PATTERN.test(serial)) {
    return refuse(
      'invalid-serial',
      serial === '' ? 'serial is empty' : `serial ${describe(serial)} must be 1-128 characters: a letter or digit, then letters, digits or . _ : / # -`,
    );
  }
  const assetTag = cell(record, columns.asset_tag);
  if (assetTag !== '' && !SERIAL_PATTERN.test(assetTag)) {
    return refuse('invalid-asset-tag', `asset_tag ${describe(assetTag)} must be 1-128 characters: a letter or digit, then letters, digits or . _ : / # -`);
  }
  const hostname = cell(record, columns.hostname).toLowerCase();
  if (hostname !== '' && !HOSTNAME_PATTERN.test(hostname)) {
    return refuse('invalid-hostname', `hostname ${describe(hostname)} is not an RFC 1123 host name`);
  }
  const group = cell(record, columns.group) || ctx.defaultGroup || '';
  if (group !== '' && !GROUP_PATTERN.test(group)) {
    return refuse('invalid-group', `group ${describe(group)} must be 1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -`);
  }
  const givenHash = cell(record, columns.ek_pub_hash).toLowerCase();
  if (givenHash !== '' && !EK_PUB_HASH_PATTERN.test(givenHash)) {
    return refuse('invalid-ek-pub-hash', 'ek_pub_hash must be 64 hexadecimal digits (SHA-256 of the EK public key)');
  }
  const certCell = cell(record, columns.ek_cert);
  let ekPubHash = givenHash;
  let ekCert: Buffer | null = null;
  let ekCertFingerprint: string | null = null;
  if (certCell !== '') {
    let read;
    try {
      read = readCertificate(certCell);
      ekPubHash = certificateEkPubHash(read.certificate);
    } catch (error) {
      if (error instanceof EkCertificateError) {
        return refuse('bad-cert', `ek_cert: ${error.message}`);
      }
      throw error;
    }
    if (givenHash !== '' && givenHash !== ekPubHash) {
      return refuse('ek-pub-hash-mismatch', `ek_pub_hash does not match the certificate's EK (${ekPubHash})`);
    }
    let extraIntermediates: Buffer[] = [];
    const intermediatesCell = cell(record, columns.ek_intermediates);
    if (intermediatesCell !== '') {
      try {
        extraIntermediates = splitIntermediates(intermediatesCell);
      } catch (error) {
        if (error instanceof EkCertificateError) {
          return refuse('bad-intermediates', `ek_intermediates: ${error.message}`);
        }
        throw error;
      }
    }
    const chain = verifyEkChain(read, {
      store: ctx.store,
      extraIntermediates,
      now: ctx.now,
      ekGraceDays: ctx.ekGraceDays,
      caGraceDays: ctx.caGraceDays,
    });
    if (!chain.ok) {
      return refuse('untrusted-chain', `${chain.reason}: ${chain.message}`);
    }
    ekCert = read.certificate.der;
    ekCertFingerprint = read.certificate.fingerprint;
  } else if (givenHash === '') {
    return refuse('missing-ek', 'the row has neither ek_cert nor ek_pub_hash');
  }
  return {
    ok: true,
    row: {
      line,
      serial,
      assetTag: assetTag === '' ? null : assetTag,
      hostname: hostname === '' ? null : hostname,
      group: group === '' ? null : group,
      ekPubHash,
      ekCert,
      ekCertFingerprint,
    },
  };
}

/** A PEM bundle, or base64 DER certificates separated by whitespace or `;`. */
export function splitIntermediates(value: string): Buffer[] {
  if (value.includes('-----BEGIN ')) {
    return unwrapCertificates(value).map((u) => u.der);
  }
  return value
    .split(/[\s;]+/)
    .filter((part) => part !== '')
    .map((part) => unwrapCertificates(part).map((u) => u.der))
    .flat();
}
