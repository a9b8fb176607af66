import { createHash } from 'node:crypto';
import { isCa, parseCertificate, type ParsedCertificate } from './certificate';
import { EkCertificateError } from './errors';
import { type CertificateInput, unwrapCertificate } from './input';
import type { ReadCertificate } from './inspect';
import { isSignedBy, UnsupportedSignatureAlgorithmError } from './signature';
import { isSelfSigned, type TrustStore, type TrustStoreEntry } from './trust-store';

export type ChainFailureReason =
  /** No enabled anchor at the top: the issuer is missing, or the top is a self-signed CA we do not trust. */
  | 'untrusted-root'
  /**
   * A CA the operator disabled verified a signature on the path — the stored certificate, the same
   * one supplied with the request, or another certificate of its key (cross-signed or re-issued).
   * `disabledCa` names it.
   */
  | 'disabled-ca'
  /** A CA with the right name (or key ID) exists, but its key does not verify the signature. */
  | 'signature-invalid'
  /** A certificate's notAfter is past, beyond the configured grace. */
  | 'expired'
  /** A certificate's notBefore is in the future (no grace applies). */
  | 'not-yet-valid'
  /** The only issuers lead back to a certificate already in the path. */
  | 'loop'
  /** The path grew past `maxDepth` certificates. */
  | 'too-deep'
  /** The search tried more signatures than its budget allows (many same-name CAs). */
  | 'too-many-candidates'
  /** The issuer is not a CA (basicConstraints) or may not sign certificates (keyUsage). */
  | 'not-a-ca'
  /** A CA's pathLenConstraint is exceeded. */
  | 'path-length-exceeded'
  /** verifyEkChain was given a CA certificate as the EK certificate. */
  | 'leaf-is-ca'
  /** A certificate has a critical extension this library does not understand (RFC 5280 §4.2). */
  | 'unhandled-critical-extension'
  /** A signature algorithm node:crypto cannot check here. */
  | 'unsupported-algorithm'
  /** The certificate (or an extra intermediate) cannot be read. */
  | 'malformed';

export type ChainSource = 'leaf' | 'store' | 'extra';

export interface ChainLink {
  readonly fingerprint: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Where the certificate came from: the one verified, the trust store, or the extra intermediates. */
  readonly source: ChainSource;
  /** leaf: the certificate verified; root: a self-signed CA; intermediate: any other CA. */
  readonly kind: 'leaf' | 'intermediate' | 'root';
}

/** A certificate accepted although expired, because it was within the configured grace. */
export interface GraceApplied {
  readonly fingerprint: string;
  readonly subject: string;
  readonly notAfter: string;
  readonly kind: 'ek' | 'ca';
  readonly daysExpired: number;
}

export type ChainResult =
  | {
      readonly ok: true;
      /** Leaf first, then each issuer, ending with the trust anchor (a root or a pinned intermediate). */
      readonly chain: readonly ChainLink[];
      readonly graceApplied: readonly GraceApplied[];
    }
  | {
      readonly ok: false;
      readonly reason: ChainFailureReason;
      readonly message: string;
      /** The certificate at which the best path failed. */
      readonly at?: { readonly fingerprint: string; readonly subject: string };
      /** For untrusted-root: the issuer name that no trusted CA answers to. */
      readonly missingIssuer?: string;
      /** For disabled-ca: the disabled store entry (by its own fingerprint, even when a copy of its key was met). */
      readonly disabledCa?: { readonly fingerprint: string; readonly subject: string };
    };

export interface ChainOptions {
  readonly store: TrustStore;
  /**
   * Intermediates that come with the certificate (the CSV row's `ek_intermediates`, an agent's
   * request). Only path material: never anchors, and refused (`disabled-ca`) when they are, or carry
   * the key of, a CA disabled in the store.
   */
  readonly extraIntermediates?: readonly (CertificateInput | ParsedCertificate)[];
  readonly now: Date;
  /**
   * Days a CA (intermediate or root) may be past its notAfter and still be accepted. Default 0.
   * Infinity ignores CA expiry. See README "Expiry and grace".
   */
  readonly caGraceDays?: number;
  /** Most certificates in a chain, leaf and anchor included. Default 8. */
  readonly maxDepth?: number;
}

export interface EkChainOptions extends ChainOptions {
  /**
   * Days an EK certificate may be past its notAfter and still be accepted; Infinity ignores EK
   * expiry. Required: a deployment decides it (see README "Expiry and grace").
   */
  readonly ekGraceDays: number;
}

const DAY_MS = 86_400_000;
const DEFAULT_MAX_DEPTH = 8;
/** Signature checks one chain search may spend before giving up. */
const SIGNATURE_BUDGET = 64;
/**
 * A disabled CA that verified a signature on the path outranks every other failure (even a search
 * that ran out of budget afterwards): the operator must hear that their decision refused the
 * certificate, not about some other path that also failed.
 */
const DISABLED_SCORE = Number.MAX_SAFE_INTEGER;
const BUDGET_SCORE = Number.MAX_SAFE_INTEGER - 1;

/**
 * CA→CA signature results, keyed by both fingerprints: a pure function of the two DER encodings, so
 * safe to share. Makes a bulk import pay for each intermediate→root link once, not once per row.
 */
const linkCache = new Map<string, boolean>();
const LINK_CACHE_LIMIT = 10_000;
/** Extra intermediates by SHA-256 of their input bytes: every CSV row of a batch repeats the same few. */
const extraCache = new Map<string, ParsedCertificate>();
const EXTRA_CACHE_LIMIT = 1_000;

function remember<V>(cache: Map<string, V>, limit: number, key: string, value: V): V {
  if (cache.size >= limit) {
    cache.clear();
  }
  cache.set(key, value);
  return value;
}

interface PathNode {
  readonly cert: ParsedCertificate;
  readonly source: ChainSource;
  readonly entry: TrustStoreEntry | undefined;
}

interface Failure {
  readonly reason: ChainFailureReason;
  readonly message: string;
  readonly score: number;
  readonly cert?: ParsedCertificate;
  readonly missingIssuer?: string;
  readonly disabledCa?: TrustStoreEntry;
}

/**
 * Later in the path beats earlier; at the same place, a failure after the signature verified beats one before.
 * `disabled-ca` is scored apart (DISABLED_SCORE): wherever it was met, it is the operator's own decision.
 */
const RANK: Readonly<Record<ChainFailureReason, number>> = {
  'untrusted-root': 1,
  'disabled-ca': 6,
  loop: 2,
  'too-deep': 2,
  'too-many-candidates': 2,
  'signature-invalid': 3,
  'unsupported-algorithm': 3,
  'not-a-ca': 5,
  'unhandled-critical-extension': 5,
  'path-length-exceeded': 5,
  expired: 5,
  'not-yet-valid': 5,
  'leaf-is-ca': 5,
  malformed: 5,
};

function checkGrace(name: string, days: number | undefined): number {
  const value = days ?? 0;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a number >= 0 (Infinity to ignore expiry), got ${String(days)}`);
  }
  return value;
}

function describe(cert: ParsedCertificate): string {
  return `"${cert.subject.text}"`;
}

/** A validity failure for `cert` at `now`, or undefined (expired within grace counts as valid). */
function validityFailure(cert: ParsedCertificate, now: Date, graceDays: number, what: string): Pick<Failure, 'reason' | 'message'> | undefined {
  if (now.getTime() < cert.notBefore.getTime()) {
    return { reason: 'not-yet-valid', message: `${what} ${describe(cert)} is not valid before ${cert.notBefore.toISOString()}` };
  }
  const pastMs = now.getTime() - cert.notAfter.getTime();
  if (pastMs > 0 && pastMs > graceDays * DAY_MS) {
    const grace = graceDays === 0 ? 'no grace' : `grace ${graceDays} days`;
    return { reason: 'expired', message: `${what} ${describe(cert)} expired ${cert.notAfter.toISOString()} (${grace})` };
  }
  return undefined;
}

function readInput(input: CertificateInput | ReadCertificate | ParsedCertificate): ParsedCertificate {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    return parseCertificate(unwrapCertificate(input).der);
  }
  return 'certificate' in input ? input.certificate : input;
}

function readExtra(input: CertificateInput | ParsedCertificate): ParsedCertificate {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    return input;
  }
  const key = createHash('sha256').update(input).digest('hex');
  return extraCache.get(key) ?? remember(extraCache, EXTRA_CACHE_LIMIT, key, parseCertificate(unwrapCertificate(input).der));
}

class ChainSearch {
  private best: Failure | undefined;
  private signatureChecks = 0;
  private readonly extras: PathNode[] = [];
  private readonly caGraceDays: number;
  private readonly maxDepth: number;

  constructor(
    private readonly options: ChainOptions,
    extras: readonly ParsedCertificate[],
  ) {
    this.caGraceDays = checkGrace('caGraceDays', options.caGraceDays);
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    const seen = new Set<string>();
    for (const cert of extras) {
      const stored = options.store.get(cert.fingerprint);
      if (seen.has(cert.fingerprint) || stored !== undefined) {
        // A copy of a store entry: the store's own entry is proposed instead — and refused there
        // when it is disabled.
        continue;
      }
      seen.add(cert.fingerprint);
      this.extras.push({ cert, source: 'extra', entry: undefined });
    }
  }

  fail(failure: Failure): void {
    if (this.best === undefined || failure.score > this.best.score) {
      this.best = failure;
    }
  }

  result(): ChainResult {
    const best = this.best ?? { reason: 'untrusted-root' as const, message: 'no path to a trusted root', score: 0 };
    return {
      ok: false,
      reason: best.reason,
      message: best.message,
      ...(best.cert === undefined ? {} : { at: { fingerprint: best.cert.fingerprint, subject: best.cert.subject.text } }),
      ...(best.missingIssuer === undefined ? {} : { missingIssuer: best.missingIssuer }),
      ...(best.disabledCa === undefined ? {} : { disabledCa: nameOf(best.disabledCa) }),
    };
  }

  /** Issuer proposals for `cert`, best first: key-ID match, store before extras, anchors, still valid, latest expiry. */
  private candidates(cert: ParsedCertificate): PathNode[] {
    // Disabled entries are proposed too, so that a path through one is refused by name (search).
    const nodes: PathNode[] = this.options.store.issuerCandidates(cert, true).map((entry) => ({ cert: entry.certificate, source: 'store' as const, entry }));
    for (const extra of this.extras) {
      if (extra.cert.subject.key === cert.issuer.key || (cert.authorityKeyId !== undefined && extra.cert.subjectKeyId === cert.authorityKeyId)) {
        nodes.push(extra);
      }
    }
    if (nodes.length < 2) {
      // The common case (one CA answers to the issuer name): nothing to rank.
      return nodes;
    }
    const now = this.options.now.getTime();
    const score = (n: PathNode): number[] => [
      cert.authorityKeyId !== undefined && n.cert.subjectKeyId !== undefined ? (n.cert.subjectKeyId === cert.authorityKeyId ? 0 : 2) : 1,
      n.source === 'store' ? 0 : 1,
      n.entry?.anchor === true ? 0 : 1,
      n.cert.notAfter.getTime() >= now ? 0 : 1,
      -n.cert.notAfter.getTime(),
    ];
    return nodes
      .map((n) => ({ n, s: score(n) }))
      .sort((a, b) => {
        for (let i = 0; i < a.s.length; i++) {
          const d = a.s[i]! - b.s[i]!;
          if (d !== 0) {
            return d;
          }
        }
        return 0;
      })
      .map(({ n }) => n);
  }

  private signedBy(child: PathNode, issuer: ParsedCertificate): boolean {
    if (child.source === 'leaf' && !isCa(child.cert)) {
      return isSignedBy(child.cert, issuer.publicKey);
    }
    const key = `${child.cert.fingerprint}:${issuer.fingerprint}`;
    return linkCache.get(key) ?? remember(linkCache, LINK_CACHE_LIMIT, key, isSignedBy(child.cert, issuer.publicKey));
  }

  /** Depth-first search from the top of `path` to an enabled anchor; the first complete path wins. */
  search(path: readonly PathNode[]): readonly PathNode[] | undefined {
    const top = path[path.length - 1]!;
    if (top.entry?.anchor === true && top.entry.enabled) {
      return path;
    }
    const depth = path.length;
    if (isSelfSigned(top.cert)) {
      this.fail({
        reason: 'untrusted-root',
        message: `${describe(top.cert)} is self-signed and not a trusted root`,
        score: depth * 10 + RANK['untrusted-root'],
        cert: top.cert,
        missingIssuer: top.cert.subject.text,
      });
      return undefined;
    }
    const candidates = this.candidates(top.cert);
    if (candidates.length === 0) {
      this.fail({
        reason: 'untrusted-root',
        message: `issuer "${top.cert.issuer.text}" of ${describe(top.cert)} is not a trusted CA`,
        score: depth * 10 + RANK['untrusted-root'],
        cert: top.cert,
        missingIssuer: top.cert.issuer.text,
      });
      return undefined;
    }
    if (depth >= this.maxDepth) {
      this.fail({ reason: 'too-deep', message: `no trusted root within ${this.maxDepth} certificates`, score: depth * 10 + RANK['too-deep'], cert: top.cert });
      return undefined;
    }
    for (const candidate of candidates) {
      const score = (reason: ChainFailureReason): number => depth * 10 + RANK[reason];
      if (path.some((n) => n.cert.fingerprint === candidate.cert.fingerprint)) {
        this.fail({ reason: 'loop', message: `${describe(candidate.cert)} would appear twice in the chain`, score: score('loop'), cert: candidate.cert });
        continue;
      }
      if (++this.signatureChecks > SIGNATURE_BUDGET) {
        this.fail({ reason: 'too-many-candidates', message: `gave up after ${SIGNATURE_BUDGET} signature checks`, score: BUDGET_SCORE, cert: top.cert });
        return undefined;
      }
      let signed: boolean;
      try {
        signed = this.signedBy(top, candidate.cert);
      } catch (error) {
        if (!(error instanceof UnsupportedSignatureAlgorithmError) && !(error instanceof EkCertificateError)) {
          throw error;
        }
        const what = error instanceof EkCertificateError ? `CA ${describe(candidate.cert)}: ${error.message}` : `${describe(top.cert)}: ${error.message}`;
        this.fail({ reason: 'unsupported-algorithm', message: what, score: score('unsupported-algorithm'), cert: top.cert });
        continue;
      }
      if (!signed) {
        this.fail({
          reason: 'signature-invalid',
          message: `the signature of ${describe(top.cert)} does not verify with the key of ${candidateWord(candidate)} CA ${describe(candidate.cert)} (${candidate.cert.fingerprint})`,
          score: score('signature-invalid'),
          cert: top.cert,
        });
        continue;
      }
      // The key verified: now it is this CA, and the operator may have disabled it (or its key).
      const disabled = this.options.store.disabledMatch(candidate.cert);
      if (disabled !== undefined) {
        this.fail({ ...disabledFailure(candidate.cert, disabled), score: DISABLED_SCORE, cert: top.cert });
        continue;
      }
      const problem = this.issuerProblem(path, candidate.cert);
      if (problem !== undefined) {
        this.fail({ ...problem, score: score(problem.reason), cert: candidate.cert });
        continue;
      }
      const found = this.search([...path, candidate]);
      if (found !== undefined) {
        return found;
      }
      if (this.signatureChecks > SIGNATURE_BUDGET) {
        return undefined;
      }
    }
    return undefined;
  }

  /** What disqualifies a CA whose key verified the signature below it. */
  private issuerProblem(path: readonly PathNode[], ca: ParsedCertificate): Pick<Failure, 'reason' | 'message'> | undefined {
    if (!isCa(ca)) {
      return { reason: 'not-a-ca', message: `issuer ${describe(ca)} is not a CA (basicConstraints cA is not TRUE)` };
    }
    if (ca.keyUsage !== undefined && !ca.keyUsage.has('keyCertSign')) {
      return { reason: 'not-a-ca', message: `issuer ${describe(ca)} may not sign certificates (keyUsage lacks keyCertSign)` };
    }
    if (ca.unhandledCriticalExtensions.length > 0) {
      return { reason: 'unhandled-critical-extension', message: `CA ${describe(ca)} has unhandled critical extension(s) ${ca.unhandledCriticalExtensions.join(', ')}` };
    }
    const validity = validityFailure(ca, this.options.now, this.caGraceDays, 'CA');
    if (validity !== undefined) {
      return validity;
    }
    // RFC 5280 §4.2.1.9: pathLenConstraint counts the non-self-issued intermediates below this CA.
    const pathLength = ca.basicConstraints?.pathLength;
    if (pathLength !== undefined) {
      const below = path.slice(1).filter((n) => n.cert.subject.key !== n.cert.issuer.key).length;
      if (below > pathLength) {
        return { reason: 'path-length-exceeded', message: `CA ${describe(ca)} allows ${pathLength} intermediate(s) below it, the chain has ${below}` };
      }
    }
    return undefined;
  }

  graceApplied(chain: readonly PathNode[], ekGraceDays: number | undefined): GraceApplied[] {
    const now = this.options.now.getTime();
    const used: GraceApplied[] = [];
    for (const node of chain) {
      const pastMs = now - node.cert.notAfter.getTime();
      if (pastMs > 0) {
        const kind = node.source === 'leaf' && ekGraceDays !== undefined ? 'ek' : 'ca';
        used.push({
          fingerprint: node.cert.fingerprint,
          subject: node.cert.subject.text,
          notAfter: node.cert.notAfter.toISOString(),
          kind,
          daysExpired: Math.floor((pastMs / DAY_MS) * 100) / 100,
        });
      }
    }
    return used;
  }
}

/**
 * Links of trust-store CAs, which every chain of a bulk import repeats: building one formats two
 * dates, a visible share of a row's cost when 100k rows chain through the same two CAs.
 */
const storeLinks = new WeakMap<TrustStoreEntry, ChainLink>();

function link(node: PathNode): ChainLink {
  if (node.source === 'store' && node.entry !== undefined) {
    // Entries are replaced, never changed, when a CA is disabled or pinned: the entry is the key.
    let cached = storeLinks.get(node.entry);
    if (cached === undefined) {
      cached = describeLink(node);
      storeLinks.set(node.entry, cached);
    }
    return cached;
  }
  return describeLink(node);
}

function describeLink(node: PathNode): ChainLink {
  const cert = node.cert;
  let kind: ChainLink['kind'] = 'leaf';
  if (node.source !== 'leaf' || isCa(cert)) {
    kind = node.entry?.kind ?? (isSelfSigned(cert) ? 'root' : 'intermediate');
  }
  return {
    fingerprint: cert.fingerprint,
    subject: cert.subject.text,
    issuer: cert.issuer.text,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    source: node.source,
    kind,
  };
}

function prepare(
  input: CertificateInput | ReadCertificate | ParsedCertificate,
  options: ChainOptions,
): { leaf: ParsedCertificate; search: ChainSearch } | ChainResult {
  let leaf: ParsedCertificate;
  try {
    leaf = readInput(input);
  } catch (error) {
    if (error instanceof EkCertificateError) {
      return { ok: false, reason: 'malformed', message: `certificate: ${error.message}` };
    }
    throw error;
  }
  const extras: ParsedCertificate[] = [];
  for (const [i, extra] of (options.extraIntermediates ?? []).entries()) {
    try {
      extras.push(readExtra(extra));
    } catch (error) {
      if (error instanceof EkCertificateError) {
        return { ok: false, reason: 'malformed', message: `intermediate #${i + 1}: ${error.message}` };
      }
      throw error;
    }
  }
  return { leaf, search: new ChainSearch(options, extras) };
}

function candidateWord(node: PathNode): string {
  if (node.source !== 'store') {
    return 'supplied';
  }
  return node.entry?.enabled === false ? 'disabled' : 'trusted';
}

/** The refusal for `cert`, which is the disabled entry or carries its key. */
function disabledFailure(cert: ParsedCertificate, disabled: TrustStoreEntry): Pick<Failure, 'reason' | 'message' | 'disabledCa'> {
  const message =
    cert.fingerprint === disabled.fingerprint
      ? `CA ${describe(cert)} is disabled (${disabled.fingerprint})`
      : `CA ${describe(cert)} (${cert.fingerprint}) has the key of disabled CA ${describe(disabled.certificate)} (${disabled.fingerprint})`;
  return { reason: 'disabled-ca', message, disabledCa: disabled };
}

function nameOf(entry: TrustStoreEntry): { fingerprint: string; subject: string } {
  return { fingerprint: entry.fingerprint, subject: entry.certificate.subject.text };
}

function refuse(cert: ParsedCertificate, reason: ChainFailureReason, message: string, disabledCa?: TrustStoreEntry): ChainResult {
  return {
    ok: false,
    reason,
    message,
    at: { fingerprint: cert.fingerprint, subject: cert.subject.text },
    ...(disabledCa === undefined ? {} : { disabledCa: nameOf(disabledCa) }),
  };
}

/**
 * Verifies an EK certificate up to a trusted anchor of `store`, through the store's enabled
 * intermediates and `extraIntermediates`. An issuer is proposed by name or key ID and accepted only
 * when its key verifies the signature over the original tbsCertificate bytes; every candidate is
 * tried (cross-signed or same-name CAs), loops and over-long paths are refused. Never throws for bad
 * certificates (→ `malformed`); throws RangeError for invalid options.
 */
export function verifyEkChain(input: CertificateInput | ReadCertificate | ParsedCertificate, options: EkChainOptions): ChainResult {
  const ekGraceDays = checkGrace('ekGraceDays', options.ekGraceDays);
  const prepared = prepare(input, options);
  if ('ok' in prepared) {
    return prepared;
  }
  const { leaf, search } = prepared;
  if (isCa(leaf)) {
    return refuse(leaf, 'leaf-is-ca', `${describe(leaf)} is a CA certificate, not an EK certificate`);
  }
  if (leaf.unhandledCriticalExtensions.length > 0) {
    return refuse(leaf, 'unhandled-critical-extension', `EK certificate has unhandled critical extension(s) ${leaf.unhandledCriticalExtensions.join(', ')}`);
  }
  const validity = validityFailure(leaf, options.now, ekGraceDays, 'EK certificate');
  if (validity !== undefined) {
    return refuse(leaf, validity.reason, validity.message);
  }
  const chain = search.search([{ cert: leaf, source: 'leaf', entry: undefined }]);
  if (chain === undefined) {
    return search.result();
  }
  return { ok: true, chain: chain.map(link), graceApplied: search.graceApplied(chain, ekGraceDays) };
}

/**
 * Verifies a CA certificate (a vendor intermediate being uploaded, say) up to a trusted anchor. A CA
 * that is itself an enabled anchor of the store chains to itself.
 */
export function verifyCaChain(input: CertificateInput | ReadCertificate | ParsedCertificate, options: ChainOptions): ChainResult {
  const prepared = prepare(input, options);
  if ('ok' in prepared) {
    return prepared;
  }
  const { leaf, search } = prepared;
  if (!isCa(leaf)) {
    return refuse(leaf, 'not-a-ca', `${describe(leaf)} is not a CA certificate`);
  }
  if (leaf.unhandledCriticalExtensions.length > 0) {
    return refuse(leaf, 'unhandled-critical-extension', `CA has unhandled critical extension(s) ${leaf.unhandledCriticalExtensions.join(', ')}`);
  }
  const validity = validityFailure(leaf, options.now, checkGrace('caGraceDays', options.caGraceDays), 'CA');
  if (validity !== undefined) {
    return refuse(leaf, validity.reason, validity.message);
  }
  const disabled = options.store.disabledMatch(leaf);
  if (disabled !== undefined) {
    return refuse(leaf, 'disabled-ca', disabledFailure(leaf, disabled).message, disabled);
  }
  const entry = options.store.get(leaf.fingerprint);
  const start: PathNode = entry !== undefined && entry.enabled ? { cert: leaf, source: 'store', entry } : { cert: leaf, source: 'leaf', entry: undefined };
  const chain = search.search([start]);
  if (chain === undefined) {
    return search.result();
  }
  return { ok: true, chain: chain.map(link), graceApplied: search.graceApplied(chain, undefined) };
}
