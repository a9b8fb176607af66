import { X509Certificate } from 'node:crypto';
import { BinaryListEntry } from './binary-list-entry';
import { digestOf, digestSize } from './hash-algorithms';
import { EXCLUDE_ROUND_VISITS, type ExcludeBudget, ExcludeBudgetError } from './exclude-matcher';
import type { ImaEntry } from './ima-entry';
import { imaKeyId, type ImaVerificationKey, verificationKeyFromSpki, verifyImaSignature } from './ima-signature';
import { IMA_PCR } from './replay';
import type { RuntimePolicy } from './runtime-policy';
import { bytesSpell } from './template-fields';

/**
 * What the runtime policy says of one entry. Only `allowed` and `excluded` pass. The rule names the
 * policy part that decided — `digests`, `keyrings` or `ima-buf` (of the verdict's path), `excludes[2]
 * "/tmp/.*"`, `signature key 0xf3452d23`, `ima.ignored_keyrings`, … — and `path` and `digest` what it decided on.
 */
export type ImaVerdictKind =
  | 'allowed'
  | 'excluded'
  | 'not-in-allowlist'
  | 'digest-mismatch'
  | 'violation'
  | 'bad-signature'
  | 'template-hash-mismatch'
  | 'unexpected-pcr';

export interface ImaVerdict {
  readonly index: number;
  readonly kind: ImaVerdictKind;
  readonly ok: boolean;
  readonly template: ImaEntry['templateName'];
  /** The file (or buffer / keyring name) the entry measured. */
  readonly path: string;
  /** "alg:hex" of the measured content. */
  readonly digest: string;
  readonly rule: string;
  /** The digests the policy allows for this path, when it lists some and none matched. */
  readonly expected?: readonly string[];
  readonly detail?: string;
}

/** A key learned from an ima-buf keyring measurement the policy allowed (Keylime's learned keyrings). */
export interface LearnedKey {
  readonly keyring: string;
  /** DER SubjectPublicKeyInfo, base64. */
  readonly spki: string;
  readonly keyId: number;
}

export interface EvaluationContext {
  /** Keys for ima-sig: the policy's verification keys, then keys learned so far (grows as ima-buf keys are allowed). */
  readonly keys: ImaVerificationKey[];
  /** Keys learned by this evaluation, to carry into the attestation state. */
  readonly learned: LearnedKey[];
  /** `keyring NUL spki` of every key learned so far (before and in this evaluation): a key measured again is not learned again. */
  readonly known: Set<string>;
  /** boot_aggregate values computed from the quoted PCRs 0–9, allowed for the `boot_aggregate` entry (as Keylime adds them). */
  readonly bootAggregates?: readonly string[];
  /** What the excludes may still spend deciding this list's paths (EXCLUDE_ROUND_VISITS a round). */
  readonly excludeBudget: ExcludeBudget;
}

export function evaluationContext(policy: RuntimePolicy, learned: readonly LearnedKey[] = [], bootAggregates?: readonly string[]): EvaluationContext {
  const keys = [...policy.verificationKeys];
  for (const k of learned) {
    const key = verificationKeyFromSpki(Buffer.from(k.spki, 'base64'));
    if (typeof key !== 'string') {
      keys.push({ key, keyId: k.keyId });
    }
  }
  const known = new Set(learned.map((k) => `${k.keyring}\0${k.spki}`));
  return { keys, learned: [], known, excludeBudget: { nfaVisits: EXCLUDE_ROUND_VISITS }, ...(bootAggregates !== undefined ? { bootAggregates } : {}) };
}

/**
 * Judges one entry as Keylime's verifier does (keylime/ima/ima.py): the excludes first, then for
 * ima-sig a signature by a listed key, else the digest lists; ima-buf entries carrying a key are
 * checked against `keyrings` (and the key learned for later signatures unless its keyring is in
 * `ima.ignored_keyrings`), other ima-buf entries against `ima-buf`. Stricter than Keylime in three
 * places: a violation always fails; an ima-buf entry whose digest is not its buffer's hash fails
 * (otherwise an allowed digest could carry any key); a malformed signature fails even when excluded.
 */
export function evaluateImaEntry(entry: ImaEntry, templateHashValid: boolean, policy: RuntimePolicy, context: EvaluationContext): ImaVerdict {
  return isPlainlyAllowed(entry, templateHashValid, policy, context) ? allowedByDigests(entry, policy) : judgeImaEntry(entry, templateHashValid, policy, context);
}

/**
 * The common case decided without building a verdict: an ima-ng entry of PCR 10, not a violation,
 * its template hash valid, whose digest the `digests` list allows for its path. Its verdict is
 * allowedByDigests(entry, policy). A 100,000-entry list is nearly all such entries, and a verdict
 * object (with its hex digest string) per entry cost as much as hashing them (bench/ima.bench.ts);
 * attestImaMeasurements builds those verdicts only when asked. The excludes are not consulted: such
 * an entry passes whether or not one matches its path (Keylime checks them first, and a match passes
 * too), and running the matcher over every allowed path was a sixth of a full round. Which of the
 * two rules its verdict names is decided when the verdict is built.
 */
export function isPlainlyAllowed(entry: ImaEntry, templateHashValid: boolean, policy: RuntimePolicy, context: EvaluationContext): boolean {
  if (entry.pcr !== IMA_PCR || entry.violation || !templateHashValid || entry.signature !== undefined || entry.buffer !== undefined) {
    return false;
  }
  if (entry instanceof BinaryListEntry) {
    // Read in place (PathDigestIndex): no path string, digest object or view for the common case.
    if (context.bootAggregates !== undefined && isBootAggregate(entry)) {
      return false;
    }
    const size = digestSize(entry.digestAlgorithm);
    const listed = policy.digestIndex.allows(entry.list, entry.nameStart, entry.nameEnd, entry.list, entry.digestStart, entry.digestStart + size);
    if (listed !== undefined) {
      return listed;
    }
  } else if (entry.path === 'boot_aggregate' && context.bootAggregates !== undefined) {
    return false;
  }
  const allowed = policy.digests.get(entry.path);
  if (allowed === undefined) {
    return false;
  }
  if (allowed.size > 4) {
    return allowed.has(entry.digest.digest.toString('hex'));
  }
  // A path lists a digest or a few: each compared with the bytes in place, no hex string per entry.
  const digest = entry.digest.digest;
  for (const hex of allowed) {
    if (isHexOf(hex, digest)) {
      return true;
    }
  }
  return false;
}

const BOOT_AGGREGATE = 'boot_aggregate';

function isBootAggregate(entry: BinaryListEntry): boolean {
  return entry.nameEnd - entry.nameStart === BOOT_AGGREGATE.length && bytesSpell(entry.list, entry.nameStart, BOOT_AGGREGATE);
}

/** `hex` (lowercase, as the policy's digest tables hold them) spells exactly `bytes`. */
function isHexOf(hex: string, bytes: Buffer): boolean {
  if (hex.length !== bytes.length * 2) {
    return false;
  }
  for (let i = 0; i < bytes.length; i += 1) {
    const b = bytes[i]!;
    if (hex.charCodeAt(2 * i) !== HEX_CODES[b >> 4] || hex.charCodeAt(2 * i + 1) !== HEX_CODES[b & 15]) {
      return false;
    }
  }
  return true;
}

const HEX_CODES = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * The verdict of an entry isPlainlyAllowed passed: `excluded` when an exclude matches its path (the
 * excludes come first, as in judgeImaEntry), else `allowed` by the digests list. Built only when a
 * round's verdicts are read, so it has a budget of its own; a path the excludes cannot decide within
 * it is named by the rule that allowed it anyway, the digests list.
 */
export function allowedByDigests(entry: ImaEntry, policy: RuntimePolicy): ImaVerdict {
  const digestHex = entry.digest.digest.toString('hex');
  let excluded: number | undefined;
  if (policy.excludes.length > 0) {
    try {
      excluded = policy.excludeMatcher.match(entry.path, { nfaVisits: EXCLUDE_ROUND_VISITS });
    } catch (error) {
      if (!(error instanceof ExcludeBudgetError)) {
        throw error;
      }
    }
  }
  return excluded === undefined
    ? makeVerdict(entry, digestHex, 'allowed', 'digests', undefined, undefined)
    : makeVerdict(entry, digestHex, 'excluded', excludesRule(policy, excluded), undefined, undefined);
}

/** The rule an excluded verdict names: the pattern's position and text. */
function excludesRule(policy: RuntimePolicy, excluded: number): string {
  return `excludes[${excluded}] ${JSON.stringify(policy.excludes[excluded])}`;
}

/**
 * The full judgement, without the shortcut isPlainlyAllowed takes: what evaluateImaEntry gives for
 * every entry the shortcut does not pass (judgeEntries calls it after the shortcut said no; the
 * lazy-verdicts test holds the shortcut to it).
 */
export function judgeImaEntry(entry: ImaEntry, templateHashValid: boolean, policy: RuntimePolicy, context: EvaluationContext): ImaVerdict {
  const digestHex = entry.digest.digest.toString('hex');
  const verdict: MakeVerdict = (kind, rule, expected, detail) => makeVerdict(entry, digestHex, kind, rule, expected, detail);
  if (entry.pcr !== IMA_PCR) {
    return verdict('unexpected-pcr', `PCR ${IMA_PCR}`, undefined, `the entry extends PCR ${entry.pcr}, which the quote does not cover`);
  }
  if (entry.violation) {
    return verdict('violation', 'IMA violation', undefined, 'all-zero template hash: a file was measured while open for writing, or changed between measurement and use (ToMToU)');
  }
  if (!templateHashValid) {
    return verdict('template-hash-mismatch', 'template hash', undefined, "the logged template hash is not the hash of the entry's template data");
  }
  let signatureProblem: string | undefined;
  if (entry.signature !== undefined && entry.signature.length > 0) {
    const check = verifyImaSignature(entry.signature, entry.digest, context.keys);
    if (check.ok) {
      return verdict('allowed', `signature key 0x${check.keyId.toString(16).padStart(8, '0')}`);
    }
    signatureProblem = check.reason;
    if (check.malformed) {
      return verdict('bad-signature', 'ima-sig signature', undefined, check.reason);
    }
  }
  if (policy.excludes.length > 0) {
    const excluded = policy.excludeMatcher.match(entry.path, context.excludeBudget);
    if (excluded !== undefined) {
      return verdict('excluded', excludesRule(policy, excluded));
    }
  }
  if (entry.buffer !== undefined) {
    return evaluateBuffer(entry, policy, context, verdict, digestHex);
  }
  const listed = digestVerdict(policy.digests, 'digests', entry, digestHex, verdict, entry.path === 'boot_aggregate' ? context.bootAggregates : undefined);
  if (!listed.ok && signatureProblem !== undefined) {
    return verdict('bad-signature', 'ima-sig signature', undefined, `${signatureProblem}; ${listed.kind === 'digest-mismatch' ? 'the digest is not in the allowlist either' : 'the file is not in the allowlist either'}`);
  }
  return listed;
}

type MakeVerdict = (kind: ImaVerdictKind, rule: string, expected?: readonly string[], detail?: string) => ImaVerdict;

function makeVerdict(entry: ImaEntry, digestHex: string, kind: ImaVerdictKind, rule: string, expected: readonly string[] | undefined, detail: string | undefined): ImaVerdict {
  const v: { -readonly [K in keyof ImaVerdict]: ImaVerdict[K] } = {
    index: entry.index,
    kind,
    ok: kind === 'allowed' || kind === 'excluded',
    template: entry.templateName,
    path: entry.path,
    digest: `${entry.digest.algorithm}:${digestHex}`,
    rule,
  };
  if (expected !== undefined) {
    v.expected = expected;
  }
  if (detail !== undefined) {
    v.detail = detail;
  }
  return v;
}

function digestVerdict(
  table: ReadonlyMap<string, ReadonlySet<string>>,
  field: string,
  entry: ImaEntry,
  digestHex: string,
  verdict: MakeVerdict,
  extra?: readonly string[],
): ImaVerdict {
  const allowed = table.get(entry.path);
  if (allowed === undefined && (extra === undefined || extra.length === 0)) {
    return verdict('not-in-allowlist', field);
  }
  // The rule is the section; the verdict's path says which of its names.
  if (allowed !== undefined && (allowed.has(digestHex) || allowed.has(`${entry.digest.algorithm}:${digestHex}`))) {
    return verdict('allowed', field);
  }
  if (extra !== undefined && extra.includes(digestHex)) {
    return verdict('allowed', 'boot_aggregate of the quoted PCRs');
  }
  return verdict('digest-mismatch', field, [...(allowed ?? []), ...(extra ?? [])]);
}

function evaluateBuffer(entry: ImaEntry, policy: RuntimePolicy, context: EvaluationContext, verdict: MakeVerdict, digestHex: string): ImaVerdict {
  const buffer = entry.buffer!;
  if (!digestOf(entry.digest.algorithm, buffer).equals(entry.digest.digest)) {
    return verdict('digest-mismatch', 'ima-buf digest', undefined, "the entry's digest is not the hash of its buffer");
  }
  const spki = publicKeyIn(buffer);
  if (spki === undefined) {
    return digestVerdict(policy.imaBuf, 'ima-buf', entry, digestHex, verdict);
  }
  if (policy.ignoredKeyrings.includes('*') || policy.ignoredKeyrings.includes(entry.path)) {
    return verdict('allowed', 'ima.ignored_keyrings', undefined, 'key measured onto an ignored keyring: not checked, not used for signatures');
  }
  const listed = digestVerdict(policy.keyrings, 'keyrings', entry, digestHex, verdict);
  // Once per keyring and key: a machine measuring an allowed key again and again (a key is loaded
  // onto a keyring as often as root likes) grew its stored state, and every later round's key list, by one each time.
  const id = `${entry.path}\0${spki.toString('base64')}`;
  if (listed.ok && !context.known.has(id)) {
    const key = verificationKeyFromSpki(spki);
    if (typeof key !== 'string') {
      context.known.add(id);
      const keyId = imaKeyId(key);
      context.keys.push({ key, keyId });
      context.learned.push({ keyring: entry.path, spki: spki.toString('base64'), keyId });
    }
  }
  return listed;
}

/** The DER SubjectPublicKeyInfo of a key measured onto a keyring: an X.509 certificate or a bare public key. */
function publicKeyIn(buffer: Buffer): Buffer | undefined {
  if (buffer.length < 16 || buffer[0] !== 0x30) {
    return undefined;
  }
  try {
    return new X509Certificate(buffer).publicKey.export({ type: 'spki', format: 'der' });
  } catch {
    const key = verificationKeyFromSpki(buffer);
    return typeof key === 'string' ? undefined : buffer;
  }
}
