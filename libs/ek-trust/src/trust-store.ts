import type { CaKind } from '@rackseal/api-contracts';
import { isCa, parseCertificate, type ParsedCertificate } from './certificate';
import { EkCertificateError, type EkCertificateErrorCode } from './errors';
import { type CertificateInput, unwrapCertificates } from './input';
import { certificateEkPubHash } from './inspect';
import { isSignedBy, UnsupportedSignatureAlgorithmError } from './signature';

/**
 * root: self-signed (issuer = subject and its own key verifies its signature) with cA = TRUE.
 * intermediate: cA = TRUE and not self-signed (cross-signed vendor roots included). The names are
 * part of the operator API (a vendor CA's `kind`): declared in its contract.
 */
export type { CaKind } from '@rackseal/api-contracts';

export interface TrustStoreEntry {
  /** Lowercase hex SHA-256 of the certificate's DER. */
  readonly fingerprint: string;
  readonly certificate: ParsedCertificate;
  readonly kind: CaKind;
  /**
   * Whether a chain may end here. Every root is an anchor; an intermediate only when the operator
   * pinned it (a vendor "root" cross-signed by a CA that is not in the store, such as Infineon's
   * `IFX TPM EK Root CA` under the retired VeriSign TPM root).
   */
  readonly anchor: boolean;
  /**
   * Disabled entries are neither anchors nor intermediates for any chain, and neither is any other
   * certificate of the same key (see `disabledMatch`).
   */
  readonly enabled: boolean;
  /** The key's identity: see `keyFingerprintOf`. */
  readonly keyFingerprint: string;
  readonly label: string | undefined;
}

export interface TrustStoreAddOptions {
  /** Pin an intermediate as a trust anchor (roots are anchors anyway). Default false. */
  readonly anchor?: boolean;
  /** Default true. */
  readonly enabled?: boolean;
  /** Free text kept with the entry (a file name, an upload id). */
  readonly label?: string;
}

export type TrustStoreRejection = EkCertificateErrorCode | 'not-a-ca';

export type TrustStoreAddResult =
  | { readonly status: 'added'; readonly entry: TrustStoreEntry }
  /** Same DER as an entry already present; the existing entry (and its options) is kept. */
  | { readonly status: 'duplicate'; readonly entry: TrustStoreEntry }
  | { readonly status: 'rejected'; readonly reason: TrustStoreRejection; readonly message: string; readonly fingerprint?: string };

const keyFingerprints = new WeakMap<ParsedCertificate, string | null>();

/**
 * Lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo in canonical form (the ekPubHash
 * rule, inspect.ts): the same for every certificate of one key — a cross-signed copy, a re-issue
 * with new validity — however its SPKI happens to be encoded. undefined when OpenSSL cannot read the
 * key (such a certificate verifies nothing either). Cached per parsed certificate.
 */
export function keyFingerprintOf(cert: ParsedCertificate): string | undefined {
  let value = keyFingerprints.get(cert);
  if (value === undefined) {
    try {
      value = certificateEkPubHash(cert);
    } catch (error) {
      if (!(error instanceof EkCertificateError)) {
        throw error;
      }
      value = null;
    }
    keyFingerprints.set(cert, value);
  }
  return value ?? undefined;
}

function isParsedCertificate(input: unknown): input is ParsedCertificate {
  return typeof input === 'object' && input !== null && 'tbs' in input && 'fingerprint' in input;
}

/** Self-signed: names match and the certificate's own key verifies its signature (RFC 5280 §3.2). */
export function isSelfSigned(cert: ParsedCertificate): boolean {
  if (cert.subject.rdns.length !== cert.issuer.rdns.length || cert.subject.key !== cert.issuer.key) {
    return false;
  }
  try {
    return isSignedBy(cert, cert.publicKey);
  } catch (error) {
    if (error instanceof UnsupportedSignatureAlgorithmError || error instanceof EkCertificateError) {
      return false;
    }
    throw error;
  }
}

/**
 * The vendor CAs an operator trusts, in memory. Pure: no I/O, no clock — the database layer loads
 * rows into one, the CLI loads files into one. Duplicates (same DER) are ignored; only CA
 * certificates are accepted.
 */
export class TrustStore {
  private readonly byFingerprint = new Map<string, TrustStoreEntry>();
  private readonly bySubject = new Map<string, string[]>();
  private readonly byKeyId = new Map<string, string[]>();
  /** Fingerprints of every entry by keyFingerprint, disabled ones included. */
  private readonly byKey = new Map<string, string[]>();
  private readonly disabled = new Set<string>();

  /** Builds a store from certificates (each input may be a PEM bundle); rejections are returned, not thrown. */
  static from(inputs: Iterable<CertificateInput | { readonly certificate: CertificateInput | ParsedCertificate; readonly options?: TrustStoreAddOptions }>): {
    store: TrustStore;
    results: TrustStoreAddResult[];
  } {
    const store = new TrustStore();
    const results: TrustStoreAddResult[] = [];
    for (const input of inputs) {
      if (typeof input === 'string' || input instanceof Uint8Array) {
        results.push(...store.addAll(input));
      } else if (isParsedCertificate(input.certificate)) {
        results.push(store.add(input.certificate, input.options));
      } else {
        results.push(...store.addAll(input.certificate, input.options));
      }
    }
    return { store, results };
  }

  get size(): number {
    return this.byFingerprint.size;
  }

  /** Adds one certificate (DER, PEM with one block, base64, or already parsed). */
  add(input: CertificateInput | ParsedCertificate, options: TrustStoreAddOptions = {}): TrustStoreAddResult {
    let cert: ParsedCertificate;
    if (isParsedCertificate(input)) {
      cert = input;
    } else {
      try {
        const blocks = unwrapCertificates(input);
        if (blocks.length !== 1) {
          return { status: 'rejected', reason: 'not-a-certificate', message: `expected one certificate, found ${blocks.length}; use addAll for bundles` };
        }
        cert = parseCertificate(blocks[0]!.der);
      } catch (error) {
        return rejection(error);
      }
    }
    return this.insert(cert, options);
  }

  /** Adds every certificate of a PEM bundle (or the one certificate of a DER/base64 input). */
  addAll(input: CertificateInput, options: TrustStoreAddOptions = {}): TrustStoreAddResult[] {
    let blocks;
    try {
      blocks = unwrapCertificates(input);
    } catch (error) {
      return [rejection(error)];
    }
    return blocks.map((block) => {
      try {
        return this.insert(parseCertificate(block.der), options);
      } catch (error) {
        return rejection(error);
      }
    });
  }

  private insert(cert: ParsedCertificate, options: TrustStoreAddOptions): TrustStoreAddResult {
    const existing = this.byFingerprint.get(cert.fingerprint);
    if (existing !== undefined) {
      return { status: 'duplicate', entry: existing };
    }
    if (!isCa(cert)) {
      return { status: 'rejected', reason: 'not-a-ca', message: `"${cert.subject.text}" is not a CA certificate (basicConstraints cA is not TRUE)`, fingerprint: cert.fingerprint };
    }
    if (cert.keyUsage !== undefined && !cert.keyUsage.has('keyCertSign')) {
      return { status: 'rejected', reason: 'not-a-ca', message: `"${cert.subject.text}" may not sign certificates (keyUsage lacks keyCertSign)`, fingerprint: cert.fingerprint };
    }
    try {
      // Decode the key now: a CA whose key OpenSSL cannot read can never verify anything.
      void cert.publicKey;
    } catch (error) {
      return { ...rejection(error), fingerprint: cert.fingerprint } as TrustStoreAddResult;
    }
    const kind: CaKind = isSelfSigned(cert) ? 'root' : 'intermediate';
    const entry: TrustStoreEntry = {
      fingerprint: cert.fingerprint,
      certificate: cert,
      kind,
      anchor: kind === 'root' || options.anchor === true,
      enabled: options.enabled ?? true,
      // The key was decoded just above, so it has a fingerprint.
      keyFingerprint: keyFingerprintOf(cert)!,
      label: options.label,
    };
    this.byFingerprint.set(entry.fingerprint, entry);
    push(this.bySubject, cert.subject.key, entry.fingerprint);
    if (cert.subjectKeyId !== undefined) {
      push(this.byKeyId, cert.subjectKeyId, entry.fingerprint);
    }
    push(this.byKey, entry.keyFingerprint, entry.fingerprint);
    if (!entry.enabled) {
      this.disabled.add(entry.fingerprint);
    }
    return { status: 'added', entry };
  }

  get(fingerprint: string): TrustStoreEntry | undefined {
    return this.byFingerprint.get(fingerprint.toLowerCase());
  }

  /** Every entry, disabled ones included, in insertion order. */
  entries(): TrustStoreEntry[] {
    return [...this.byFingerprint.values()];
  }

  roots(): TrustStoreEntry[] {
    return this.entries().filter((e) => e.kind === 'root');
  }

  intermediates(): TrustStoreEntry[] {
    return this.entries().filter((e) => e.kind === 'intermediate');
  }

  /** Enables or disables an entry; false when there is no such entry. */
  setEnabled(fingerprint: string, enabled: boolean): boolean {
    const entry = this.get(fingerprint);
    if (entry === undefined) {
      return false;
    }
    this.byFingerprint.set(entry.fingerprint, { ...entry, enabled });
    if (enabled) {
      this.disabled.delete(entry.fingerprint);
    } else {
      this.disabled.add(entry.fingerprint);
    }
    return true;
  }

  disable(fingerprint: string): boolean {
    return this.setEnabled(fingerprint, false);
  }

  enable(fingerprint: string): boolean {
    return this.setEnabled(fingerprint, true);
  }

  /**
   * The disabled entry that `cert` is, or whose key `cert` carries (a cross-signed or re-issued copy:
   * other DER, same key), else undefined. Disabling distrusts the key, not only one encoding of it:
   * every certificate of the key verifies exactly the same signatures, so a copy — supplied with a
   * request or even stored and enabled — would otherwise undo the operator's decision.
   */
  disabledMatch(cert: ParsedCertificate): TrustStoreEntry | undefined {
    if (this.disabled.size === 0) {
      return undefined;
    }
    const same = this.byFingerprint.get(cert.fingerprint);
    if (same !== undefined && !same.enabled) {
      return same;
    }
    const key = keyFingerprintOf(cert);
    for (const fp of key === undefined ? [] : (this.byKey.get(key) ?? [])) {
      const entry = this.byFingerprint.get(fp)!;
      if (!entry.enabled) {
        return entry;
      }
    }
    return undefined;
  }

  /** Pins (or unpins) an intermediate as a trust anchor; roots stay anchors. */
  setAnchor(fingerprint: string, anchor: boolean): boolean {
    const entry = this.get(fingerprint);
    if (entry === undefined) {
      return false;
    }
    this.byFingerprint.set(entry.fingerprint, { ...entry, anchor: entry.kind === 'root' || anchor });
    return true;
  }

  /**
   * Entries that may have issued `cert`: subject name equal to its issuer name, or subject key ID
   * equal to its authority key ID. Only proposals — chain.ts accepts one only when the signature
   * verifies. Disabled entries are proposed too when `includeDisabled` (the chain builder does, to
   * refuse them by name once their key verified the signature).
   */
  issuerCandidates(cert: ParsedCertificate, includeDisabled = false): TrustStoreEntry[] {
    const fingerprints = new Set(this.bySubject.get(cert.issuer.key) ?? []);
    if (cert.authorityKeyId !== undefined) {
      for (const fp of this.byKeyId.get(cert.authorityKeyId) ?? []) {
        fingerprints.add(fp);
      }
    }
    return [...fingerprints].map((fp) => this.byFingerprint.get(fp)!).filter((e) => includeDisabled || e.enabled);
  }
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list === undefined) {
    map.set(key, [value]);
  } else {
    list.push(value);
  }
}

function rejection(error: unknown): TrustStoreAddResult {
  if (error instanceof EkCertificateError) {
    return { status: 'rejected', reason: error.code, message: error.message };
  }
  throw error;
}
