import {
  MAX_CA_SOURCE_LENGTH,
  MIN_FINGERPRINT_PREFIX,
  type VendorCaAddResult,
  type VendorCaAddSummary as WireVendorCaAddSummary,
  type VendorCaChange as WireVendorCaChange,
  type VendorCaSummary as WireVendorCaSummary,
} from '@rackseal/api-contracts';
import type { AuditLog } from '@rackseal/audit';
import {
  type CertificateInput,
  EkCertificateError,
  findUnprintable,
  parseCertificate,
  type ParsedCertificate,
  TrustStore,
  UNPRINTABLE_CLASS,
  unwrapCertificates,
  verifyCaChain,
} from '@rackseal/ek-trust';
import type { Clock, RandomSource } from '@rackseal/platform';
import { createHash } from 'node:crypto';
import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';
import type { DataSource, EntityManager } from 'typeorm';
import type { VendorCaEntity } from './vendor-ca.entity';
import { type TrustStoreRow, vendorCaRepository } from './vendor-cas.repository';

/** Every code this library throws, with its kind (the README lists them with their HTTP status). */
export const VENDOR_CA_ERROR_CODES = {
  'vendor-ca.invalid-input': 'invalid',
  'vendor-ca.not-found': 'not-found',
  'vendor-ca.ambiguous-prefix': 'conflict',
} as const satisfies ErrorCodeTable;
export type VendorCaErrorCode = keyof typeof VENDOR_CA_ERROR_CODES;

/** A refusal of this library, carrying one of VENDOR_CA_ERROR_CODES. */
export class VendorCaError extends domainErrorFor(VENDOR_CA_ERROR_CODES) {}

/**
 * Input that cannot be read as certificates at all (bad PEM, bad base64, truncated DER), a reference
 * that is neither a fingerprint, a prefix nor an id, or a change that makes no sense (unpinning a
 * root). Nothing is written.
 */
export class VendorCaInputError extends VendorCaError {
  constructor(message: string) {
    super('vendor-ca.invalid-input', message);
    this.name = 'VendorCaInputError';
  }
}

/** No stored CA has this fingerprint, prefix or id. */
export class VendorCaNotFoundError extends VendorCaError {
  constructor(readonly ref: string) {
    super('vendor-ca.not-found', `no vendor CA ${JSON.stringify(ref.slice(0, 100))}`);
    this.name = 'VendorCaNotFoundError';
  }
}

/** A fingerprint prefix that more than one stored CA starts with; `matches` lists them (the first 10). */
export class VendorCaAmbiguousRefError extends VendorCaError {
  constructor(
    readonly prefix: string,
    readonly matches: readonly string[],
    more: boolean,
  ) {
    super('vendor-ca.ambiguous-prefix', `fingerprint prefix ${prefix} is ambiguous: it matches ${matches.join(', ')}${more ? ' and more' : ''}; give more digits`);
    this.name = 'VendorCaAmbiguousRefError';
  }
}

/** One file of an upload (or one pasted bundle): DER, PEM (one or many blocks) or base64 DER. */
export interface VendorCaUpload {
  readonly content: CertificateInput;
  /** Kept with each CA as its `source` (a file name); at most 255 characters. */
  readonly source?: string;
}

// What the routes answer is part of the operator API: declared in its contract. Inside the server the
// instants are Dates (serialised to ISO 8601 on the way out).
export { MIN_FINGERPRINT_PREFIX, type VendorCaAddResult, type VendorCaChainStatus } from '@rackseal/api-contracts';
export type VendorCaAddSummary = WireVendorCaAddSummary;
export type VendorCaSummary = WireVendorCaSummary<Date>;
export type VendorCaChange = WireVendorCaChange<Date>;

export interface AddBundleOptions {
  /** Audit actor and `added_by`, e.g. `token:<id>`. */
  readonly addedBy: string;
  /** Default `source` for uploads that name none. */
  readonly source?: string;
  /**
   * Intermediates to pin as trust anchors: `true` pins every intermediate of this call, a list pins
   * those fingerprints. Roots are anchors anyway. Duplicates keep their stored setting (use setAnchor).
   */
  readonly anchors?: boolean | readonly string[];
}

/**
 * A CA named by its fingerprint (hex, any case, colons allowed), a unique prefix of it (as git takes
 * short hashes: the CLI prints 16 digits), or its id (uuid).
 */
export type VendorCaRef = { readonly fingerprint: string } | { readonly fingerprintPrefix: string } | { readonly id: string };

const FINGERPRINT = /^[0-9a-f]{64}$/;
const FINGERPRINT_PREFIX = new RegExp(`^[0-9a-f]{${MIN_FINGERPRINT_PREFIX},63}$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_LISTED_MATCHES = 10;
/**
 * A label fit to store and show (for request validation: class-validator's `@Matches`). A label
 * (a CA's `source`) is echoed to operators' terminals (`vendor-ca list`, audit records) for as long
 * as the CA is kept, and PostgreSQL text cannot hold NUL: control characters (ek-trust's
 * UNPRINTABLE_CLASS: C0 with NUL, DEL, C1, line separators, invisible format characters) are refused,
 * not escaped — a file can be renamed.
 */
export const PRINTABLE_LABEL = new RegExp(`^[^${UNPRINTABLE_CLASS}]*$`, 'u');

/** undefined when `text` is fit to store and show; else why not (for a message that names the field). */
export function unprintableCharacter(text: string): string | undefined {
  const found = findUnprintable(text);
  if (found === undefined) {
    return undefined;
  }
  return `contains the control character U+${found.character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')} at position ${found.index + 1}`;
}

/** Reads `AB:CD…`, `abcd…`, a prefix of at least 8 hex digits, or a uuid; throws VendorCaInputError for anything else. */
export function parseVendorCaRef(text: string): VendorCaRef {
  const trimmed = text.trim().toLowerCase();
  if (UUID.test(trimmed)) {
    return { id: trimmed };
  }
  const hex = trimmed.replace(/:/g, '');
  if (FINGERPRINT.test(hex)) {
    return { fingerprint: hex };
  }
  if (FINGERPRINT_PREFIX.test(hex)) {
    return { fingerprintPrefix: hex };
  }
  // JSON.stringify escapes control characters (NUL included): the message is safe to print.
  throw new VendorCaInputError(
    `fingerprint ${JSON.stringify(text.slice(0, 100))} is neither a SHA-256 fingerprint (64 hex digits, or a unique prefix of at least ${MIN_FINGERPRINT_PREFIX}) nor a CA id (uuid)`,
  );
}

function summarize(row: VendorCaEntity): VendorCaSummary {
  return {
    id: row.id,
    fingerprint: row.fingerprint,
    subject: row.subject,
    issuer: row.issuer,
    serial: row.serial,
    notBefore: row.notBefore,
    notAfter: row.notAfter,
    kind: row.kind,
    anchor: row.isAnchor,
    enabled: row.enabled,
    source: row.source,
    addedAt: row.addedAt,
    addedBy: row.addedBy,
    disabledAt: row.disabledAt,
    disabledBy: row.disabledBy,
  };
}

/**
 * The vendor CAs rackseal trusts, from the `vendor_cas` table. Roots and pinned intermediates are
 * anchors. Disabled rows are loaded too, marked disabled: the chain builder must know them to refuse
 * them — and every other certificate of their key — when a CSV row or an agent supplies one as an
 * intermediate (issue 9). A store without them would silently accept such a copy. This is the trust
 * store the inventory importer and attestation use: load it once per import or request, never per row.
 */
export async function loadTrustStore(manager: EntityManager | DataSource): Promise<TrustStore> {
  return trustStoreFromRows(await vendorCaRepository.trustStoreRows(manager));
}

/** The trust store of `vendor_cas` rows (loadTrustStore, TrustStoreCache). */
export function trustStoreFromRows(rows: readonly TrustStoreRow[]): TrustStore {
  const store = new TrustStore();
  for (const row of rows) {
    const result = store.add(row.der, { anchor: row.isAnchor, enabled: row.enabled, label: row.source ?? undefined });
    if (result.status === 'rejected') {
      // Only certificates the same parser accepted were stored: a refusal means the row was altered
      // or the parser changed. Fail loudly rather than silently trust less (or more) than listed.
      throw new Error(`stored vendor CA ${row.fingerprint} no longer loads (${result.reason}): ${result.message}`);
    }
  }
  return store;
}

interface Pending {
  readonly source: string | null;
  readonly position: number;
  readonly cert?: ParsedCertificate;
  result: VendorCaAddResult;
}

/**
 * Adds, lists, disables and enables vendor CAs. Framework-free (the control plane wraps it in a
 * provider; a CLI or test can construct it). Every change and its audit record commit together.
 */
export class VendorCas {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: Pick<AuditLog, 'append'>,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {}

  /**
   * Adds every certificate of the uploads in one transaction.
   *
   * - Unreadable input (no certificate, bad PEM/base64, truncated or malformed DER) throws
   *   VendorCaInputError naming the upload and block: nothing of the call is written.
   * - Readable certificates that are not usable CAs (a leaf EK certificate, keyUsage without
   *   keyCertSign, a key OpenSSL cannot read) are `rejected` with a reason; the others of the call
   *   are still added. A rejection is a decision about that certificate, not a broken request.
   * - Same DER as a stored CA, or twice in the call: `duplicate`; the stored row is not touched.
   * One audit record per call that added or rejected anything (`vendor-ca.added`); a call where
   * everything was a duplicate changes nothing and records nothing.
   */
  async addBundle(input: CertificateInput | readonly (CertificateInput | VendorCaUpload)[], options: AddBundleOptions): Promise<VendorCaAddSummary> {
    const uploads = (Array.isArray(input) ? input : [input]) as (CertificateInput | VendorCaUpload)[];
    const pending = this.read(uploads, options);
    const now = this.clock.now();

    const results = await this.dataSource.transaction(async (m) => {
      const candidates = pending.filter((p) => p.result.status === 'added');
      const stored = candidates.length > 0 ? await vendorCaRepository.flagsOf(m, candidates.map((p) => p.result.fingerprint)) : new Map<string, never>();
      for (const p of candidates) {
        const cert = p.cert!;
        const existing = stored.get(cert.fingerprint);
        if (existing === undefined) {
          // ON CONFLICT: a concurrent upload of the same CA makes this one a duplicate, not an error.
          const inserted = await vendorCaRepository.insertIfNew(m, {
            id: this.random.uuid(),
            fingerprint: cert.fingerprint,
            der: cert.der,
            subject: cert.subject.text,
            issuer: cert.issuer.text,
            serial: cert.serialNumber,
            notBefore: cert.notBefore,
            notAfter: cert.notAfter,
            kind: p.result.kind!,
            isAnchor: p.result.anchor!,
            source: p.source,
            addedAt: now,
            addedBy: options.addedBy,
          });
          if (inserted) {
            continue;
          }
          const row = (await vendorCaRepository.flagsOf(m, [cert.fingerprint])).get(cert.fingerprint);
          p.result = { ...p.result, status: 'duplicate', duplicateOf: 'stored', anchor: row?.isAnchor ?? p.result.anchor, enabled: row?.enabled ?? true };
          continue;
        }
        p.result = { ...p.result, status: 'duplicate', duplicateOf: 'stored', anchor: existing.isAnchor, enabled: existing.enabled };
      }
      // Upload duplicates report what the stored twin ended up as.
      const byFingerprint = new Map(pending.filter((p) => p.result.status !== 'rejected' && p.result.duplicateOf !== 'upload').map((p) => [p.result.fingerprint, p.result]));
      for (const p of pending) {
        if (p.result.duplicateOf === 'upload') {
          const twin = byFingerprint.get(p.result.fingerprint);
          p.result = { ...p.result, anchor: twin?.anchor, enabled: twin?.enabled };
        }
      }

      await this.checkChains(m, pending, now);

      const added = pending.filter((p) => p.result.status === 'added').map((p) => p.result);
      const rejected = pending.filter((p) => p.result.status === 'rejected').map((p) => p.result);
      if (added.length > 0 || rejected.length > 0) {
        await this.audit.append(
          {
            actor: options.addedBy,
            action: 'vendor-ca.added',
            subject: 'vendor-cas',
            outcome: added.length > 0 ? 'success' : 'refused',
            details: {
              added: added.map((r) => ({ fingerprint: r.fingerprint, subject: r.subject, kind: r.kind ?? null, anchor: r.anchor ?? false, source: r.source })),
              duplicates: pending.length - added.length - rejected.length,
              rejected: rejected.map((r) => ({ fingerprint: r.fingerprint, subject: r.subject, reason: r.reason ?? null, source: r.source })),
            },
          },
          m,
        );
      }
      return pending.map((p) => p.result);
    });
    return {
      results,
      added: results.filter((r) => r.status === 'added').length,
      duplicate: results.filter((r) => r.status === 'duplicate').length,
      rejected: results.filter((r) => r.status === 'rejected').length,
    };
  }

  /** Parses everything before touching the database; throws VendorCaInputError on unreadable input. */
  private read(uploads: readonly (CertificateInput | VendorCaUpload)[], options: AddBundleOptions): Pending[] {
    if (uploads.length === 0) {
      throw new VendorCaInputError('no certificates given');
    }
    const scratch = new TrustStore();
    const pending: Pending[] = [];
    uploads.forEach((upload, index) => {
      const { content, source: named } = typeof upload === 'string' || upload instanceof Uint8Array ? { content: upload, source: undefined } : upload;
      const source = named ?? options.source ?? null;
      if (source !== null && source.length > MAX_CA_SOURCE_LENGTH) {
        throw new VendorCaInputError(`source name ${JSON.stringify(source.slice(0, 40))}… is longer than ${MAX_CA_SOURCE_LENGTH} characters`);
      }
      const unprintable = source === null ? undefined : unprintableCharacter(source);
      if (unprintable !== undefined) {
        throw new VendorCaInputError(`source name ${JSON.stringify(source!.slice(0, 40))} ${unprintable}`);
      }
      const what = source !== null ? JSON.stringify(source) : `upload #${index + 1}`;
      let blocks;
      try {
        blocks = unwrapCertificates(content);
      } catch (error) {
        throw asInputError(error, what);
      }
      blocks.forEach((block, b) => {
        const where = blocks.length > 1 ? `${what} certificate #${b + 1}` : what;
        const position = b + 1;
        let cert: ParsedCertificate;
        try {
          cert = parseCertificate(block.der);
        } catch (error) {
          if (error instanceof EkCertificateError && error.code === 'unsupported-key') {
            const fingerprint = createHash('sha256').update(block.der).digest('hex');
            pending.push({ source, position, result: { status: 'rejected', source, position, fingerprint, subject: '', reason: error.code, message: error.message } });
            return;
          }
          throw asInputError(error, where);
        }
        const anchor = options.anchors === true || (Array.isArray(options.anchors) && options.anchors.includes(cert.fingerprint));
        const added = scratch.add(cert, { anchor, label: source ?? undefined });
        const base = { source, position, fingerprint: cert.fingerprint, subject: cert.subject.text };
        if (added.status === 'rejected') {
          pending.push({ source, position, cert, result: { ...base, status: 'rejected', reason: added.reason, message: added.message } });
        } else if (added.status === 'duplicate') {
          pending.push({ source, position, cert, result: { ...base, status: 'duplicate', duplicateOf: 'upload', kind: added.entry.kind } });
        } else {
          pending.push({ source, position, cert, result: { ...base, status: 'added', kind: added.entry.kind, anchor: added.entry.anchor, enabled: true } });
        }
      });
    });
    return pending;
  }

  /** For each intermediate of the call that is not an anchor: does it chain to an enabled anchor now? */
  private async checkChains(m: EntityManager, pending: Pending[], now: Date): Promise<void> {
    const toCheck = pending.filter((p) => p.result.status !== 'rejected' && p.result.kind === 'intermediate' && p.result.anchor === false && p.result.enabled !== false);
    if (toCheck.length === 0) {
      return;
    }
    const store = await loadTrustStore(m);
    for (const p of toCheck) {
      const chain = verifyCaChain(p.cert!, { store, now });
      if (chain.ok) {
        const top = chain.chain[chain.chain.length - 1]!;
        p.result = { ...p.result, chain: { ok: true, anchor: top.subject, anchorFingerprint: top.fingerprint } };
      } else {
        p.result = { ...p.result, chain: { ok: false, reason: chain.reason, message: chain.message } };
      }
    }
  }

  async list(options: { includeDisabled?: boolean } = {}): Promise<VendorCaSummary[]> {
    const rows = await vendorCaRepository.list(this.dataSource.manager, options.includeDisabled === true);
    return rows.map(summarize);
  }

  /** undefined when unknown; throws VendorCaAmbiguousRefError for a prefix of several fingerprints. */
  async get(ref: VendorCaRef): Promise<VendorCaSummary | undefined> {
    const row = await findRow(this.dataSource.manager, ref, false);
    return row === undefined ? undefined : summarize(row);
  }

  /** Disables a CA (excluded from every trust store from now on). undefined when unknown; audited when it changed. */
  disable(ref: VendorCaRef, by: string): Promise<VendorCaChange | undefined> {
    return this.setEnabled(ref, false, by);
  }

  enable(ref: VendorCaRef, by: string): Promise<VendorCaChange | undefined> {
    return this.setEnabled(ref, true, by);
  }

  private setEnabled(ref: VendorCaRef, enabled: boolean, by: string): Promise<VendorCaChange | undefined> {
    return this.dataSource.transaction(async (m) => {
      const row = await findRow(m, ref, true);
      if (row === undefined) {
        return undefined;
      }
      if (row.enabled === enabled) {
        return { changed: false, ca: summarize(row) };
      }
      const now = this.clock.now();
      const changes = enabled ? { enabled, disabledAt: null, disabledBy: null } : { enabled, disabledAt: now, disabledBy: by };
      await vendorCaRepository.update(m, row.id, changes);
      await this.audit.append(
        {
          actor: by,
          action: enabled ? 'vendor-ca.enabled' : 'vendor-ca.disabled',
          subject: `vendor-ca:${row.fingerprint}`,
          outcome: 'success',
          details: { fingerprint: row.fingerprint, subject: row.subject, kind: row.kind, anchor: row.isAnchor },
        },
        m,
      );
      return { changed: true, ca: summarize({ ...row, ...changes }) };
    });
  }

  /**
   * Pins (or unpins) an intermediate as a trust anchor. Roots are always anchors: unpinning one
   * throws VendorCaInputError. undefined when unknown; audited when it changed.
   */
  setAnchor(ref: VendorCaRef, anchor: boolean, by: string): Promise<VendorCaChange | undefined> {
    return this.dataSource.transaction(async (m) => {
      const row = await findRow(m, ref, true);
      if (row === undefined) {
        return undefined;
      }
      if (row.kind === 'root' && !anchor) {
        throw new VendorCaInputError(`"${row.subject}" is a root (self-signed): roots are always anchors; disable it instead`);
      }
      if (row.isAnchor === anchor) {
        return { changed: false, ca: summarize(row) };
      }
      await vendorCaRepository.update(m, row.id, { isAnchor: anchor });
      await this.audit.append(
        {
          actor: by,
          action: anchor ? 'vendor-ca.pinned' : 'vendor-ca.unpinned',
          subject: `vendor-ca:${row.fingerprint}`,
          outcome: 'success',
          details: { fingerprint: row.fingerprint, subject: row.subject, kind: row.kind },
        },
        m,
      );
      return { changed: true, ca: summarize({ ...row, isAnchor: anchor }) };
    });
  }
}

/**
 * The one row `ref` names (locked for update when `lock`), undefined when none. A prefix is resolved
 * to its full fingerprint first: more than one match throws VendorCaAmbiguousRefError, listing them.
 */
async function findRow(m: EntityManager, ref: VendorCaRef, lock: boolean): Promise<VendorCaEntity | undefined> {
  let where: { fingerprint: string } | { id: string };
  if ('fingerprintPrefix' in ref) {
    // Only hex digits reach here (parseVendorCaRef), so LIKE sees no wildcard but the final %.
    const matches = await vendorCaRepository.fingerprintsStartingWith(m, ref.fingerprintPrefix, MAX_LISTED_MATCHES + 1);
    if (matches.length === 0) {
      return undefined;
    }
    if (matches.length > 1) {
      throw new VendorCaAmbiguousRefError(
        ref.fingerprintPrefix,
        matches.slice(0, MAX_LISTED_MATCHES),
        matches.length > MAX_LISTED_MATCHES,
      );
    }
    where = { fingerprint: matches[0]! };
  } else {
    where = ref;
  }
  return vendorCaRepository.findOne(m, where, lock);
}

function asInputError(error: unknown, where: string): VendorCaInputError {
  if (error instanceof EkCertificateError) {
    return new VendorCaInputError(`${where}: ${error.message}`);
  }
  throw error;
}
