import { ExcludeMatcher, ExcludePatternError } from './exclude-matcher';
import { isImaBank, type ImaBank } from './hash-algorithms';
import { PathDigestIndex } from './path-digest-index';
import { imaKeyId, type ImaVerificationKey, verificationKeyFromSpki } from './ima-signature';

/**
 * A runtime policy in Keylime's format (docs/user_guide/runtime_ima.rst, "Runtime Policy JSON Schema",
 * and keylime/ima/ima.py RUNTIME_POLICY_SCHEMA), as `keylime-policy create runtime` writes it:
 *   { "meta": { "version": 1, "generator": n, "timestamp": "…" }, "release": n,
 *     "digests": { path: [hex…] }, "excludes": [regex…], "keyrings": { keyring: [hex…] },
 *     "ima": { "ignored_keyrings": [name…], "log_hash_alg": "sha1", "dm_policy": null },
 *     "ima-buf": { name: [hex…] }, "verification-keys": "" | "{\"pubkeys\": [b64 DER SPKI…], \"keyids\": [n…]}" }
 * Parsed once (parseRuntimePolicy) into lookup tables and a compiled exclude matcher; evaluation
 * then costs a map lookup per entry.
 */
export interface RuntimePolicy {
  readonly meta: { readonly version: 1; readonly generator?: number; readonly timestamp?: string };
  readonly release?: number;
  /** path → allowed digests, each as lowercase hex (any algorithm of that size) or "alg:hex". */
  readonly digests: ReadonlyMap<string, ReadonlySet<string>>;
  /** `digests` keyed by the paths' bytes, for the common case read in place (PathDigestIndex); built when first read. */
  readonly digestIndex: PathDigestIndex;
  readonly excludes: readonly string[];
  readonly excludeMatcher: ExcludeMatcher;
  readonly keyrings: ReadonlyMap<string, ReadonlySet<string>>;
  readonly imaBuf: ReadonlyMap<string, ReadonlySet<string>>;
  readonly verificationKeys: readonly ImaVerificationKey[];
  readonly ignoredKeyrings: readonly string[];
  readonly logHashAlgorithm: ImaBank;
}

export const RUNTIME_POLICY_LIMITS = {
  /** A policy of a whole distribution (~300,000 files) is about 30 MB of JSON. */
  bytes: 64 * 1024 * 1024,
  paths: 1_000_000,
  digestsPerPath: 1024,
  pathLength: 4096,
  keyringNames: 1024,
  verificationKeys: 64,
  verificationKeysBytes: 1024 * 1024,
} as const;

export class RuntimePolicyError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`runtime policy ${field}: ${reason}`);
    this.name = 'RuntimePolicyError';
  }
}

const TOP_LEVEL = new Set(['meta', 'release', 'digests', 'excludes', 'keyrings', 'ima', 'ima-buf', 'verification-keys']);
const DIGEST_HEX = /^(?:(sha1|sha224|sha256|sha384|sha512|sm3_256):)?([0-9a-f]{40}|[0-9a-f]{56}|[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$/;
const DIGEST_SIZES: Record<string, number> = { sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128, sm3_256: 64 };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses and validates a runtime policy (JSON text, bytes, or an already parsed value). Throws
 * RuntimePolicyError naming the field. Unknown keys are refused rather than ignored: a field this
 * version does not know may be a rule its author relies on (the schema says additionalProperties false).
 */
export function parseRuntimePolicy(input: string | Uint8Array | unknown): RuntimePolicy {
  let value: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const length = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
    if (length > RUNTIME_POLICY_LIMITS.bytes) {
      throw new RuntimePolicyError('(document)', `${length} bytes exceeds ${RUNTIME_POLICY_LIMITS.bytes}`);
    }
    try {
      value = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch (error) {
      throw new RuntimePolicyError('(document)', `not JSON: ${(error as Error).message}`);
    }
  }
  if (!isObject(value)) {
    throw new RuntimePolicyError('(document)', 'must be a JSON object');
  }
  for (const key of Object.keys(value)) {
    if (!TOP_LEVEL.has(key)) {
      throw new RuntimePolicyError(key, 'unknown field (not in the runtime-policy format)');
    }
  }
  const meta = value.meta;
  if (!isObject(meta)) {
    throw new RuntimePolicyError('meta', 'required object');
  }
  if (meta.version !== 1) {
    throw new RuntimePolicyError('meta.version', `must be 1 (the runtime-policy format version), got ${JSON.stringify(meta.version) ?? 'nothing'}`);
  }
  if (meta.generator !== undefined && !(Number.isInteger(meta.generator) && (meta.generator as number) >= 0 && (meta.generator as number) <= 3)) {
    throw new RuntimePolicyError('meta.generator', 'must be an integer 0..3');
  }
  if (meta.timestamp !== undefined && typeof meta.timestamp !== 'string') {
    throw new RuntimePolicyError('meta.timestamp', 'must be a string');
  }
  for (const key of Object.keys(meta)) {
    if (!['version', 'generator', 'timestamp'].includes(key)) {
      throw new RuntimePolicyError(`meta.${key}`, 'unknown field');
    }
  }
  if (value.release !== undefined && !(Number.isInteger(value.release) && (value.release as number) >= 0)) {
    throw new RuntimePolicyError('release', 'must be a non-negative integer');
  }
  const ima = value.ima ?? { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null };
  if (!isObject(ima)) {
    throw new RuntimePolicyError('ima', 'must be an object');
  }
  for (const key of Object.keys(ima)) {
    if (!['ignored_keyrings', 'log_hash_alg', 'dm_policy'].includes(key)) {
      throw new RuntimePolicyError(`ima.${key}`, 'unknown field');
    }
  }
  if (ima.dm_policy !== undefined && ima.dm_policy !== null) {
    throw new RuntimePolicyError('ima.dm_policy', 'device-mapper policies are not supported (must be null)');
  }
  const logHashAlgorithm = ima.log_hash_alg ?? 'sha1';
  if (!isImaBank(logHashAlgorithm)) {
    throw new RuntimePolicyError('ima.log_hash_alg', 'must be one of sha1, sha256, sha384, sha512');
  }
  const ignoredKeyrings = stringList(ima.ignored_keyrings ?? [], 'ima.ignored_keyrings', RUNTIME_POLICY_LIMITS.keyringNames, 255);
  const excludes = stringList(value.excludes ?? [], 'excludes', Infinity, Infinity);
  let excludeMatcher: ExcludeMatcher;
  try {
    excludeMatcher = ExcludeMatcher.compile(excludes);
  } catch (error) {
    if (error instanceof ExcludePatternError) {
      throw new RuntimePolicyError(`excludes[${error.pattern}]`, `${error.reason} (at character ${error.position})`);
    }
    throw error;
  }
  const digests = digestTable(value.digests ?? {}, 'digests', RUNTIME_POLICY_LIMITS.paths);
  let digestIndex: PathDigestIndex | undefined;
  const policy: { -readonly [K in keyof RuntimePolicy]: RuntimePolicy[K] } = {
    meta: {
      version: 1,
      ...(meta.generator !== undefined ? { generator: meta.generator as number } : {}),
      ...(meta.timestamp !== undefined ? { timestamp: meta.timestamp as string } : {}),
    },
    digests,
    // Built on first use: a policy parsed only to be validated (set, show, the CLI) never asks it.
    get digestIndex() {
      return (digestIndex ??= PathDigestIndex.build(digests));
    },
    excludes,
    excludeMatcher,
    keyrings: digestTable(value.keyrings ?? {}, 'keyrings', RUNTIME_POLICY_LIMITS.keyringNames),
    imaBuf: digestTable(value['ima-buf'] ?? {}, 'ima-buf', RUNTIME_POLICY_LIMITS.keyringNames),
    verificationKeys: verificationKeys(value['verification-keys'] ?? ''),
    ignoredKeyrings,
    logHashAlgorithm,
  };
  if (value.release !== undefined) {
    policy.release = value.release as number;
  }
  return policy;
}

function stringList(value: unknown, field: string, maxItems: number, maxLength: number): string[] {
  if (!Array.isArray(value)) {
    throw new RuntimePolicyError(field, 'must be an array of strings');
  }
  if (value.length > maxItems) {
    throw new RuntimePolicyError(field, `more than ${maxItems} items`);
  }
  return value.map((item, i) => {
    if (typeof item !== 'string') {
      throw new RuntimePolicyError(`${field}[${i}]`, 'must be a string');
    }
    if (item.length > maxLength) {
      throw new RuntimePolicyError(`${field}[${i}]`, `longer than ${maxLength} characters`);
    }
    return item;
  });
}

/** `{ name: [hex…] }` (Keylime's digests-object; a single string is taken as a list of one, as the older documented schema has it). */
function digestTable(value: unknown, field: string, maxKeys: number): Map<string, Set<string>> {
  if (!isObject(value)) {
    throw new RuntimePolicyError(field, 'must be an object of name → list of hex digests');
  }
  const table = new Map<string, Set<string>>();
  let count = 0;
  for (const name in value) {
    if (!Object.prototype.hasOwnProperty.call(value, name)) {
      continue;
    }
    count += 1;
    if (count > maxKeys) {
      throw new RuntimePolicyError(field, `more than ${maxKeys} names`);
    }
    if (name.length === 0 || name.length > RUNTIME_POLICY_LIMITS.pathLength) {
      throw new RuntimePolicyError(`${field}`, `a name of ${name.length} characters (1..${RUNTIME_POLICY_LIMITS.pathLength})`);
    }
    const raw = value[name];
    const list = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0 || list.length > RUNTIME_POLICY_LIMITS.digestsPerPath) {
      throw new RuntimePolicyError(`${field}[${JSON.stringify(name)}]`, `must be a list of 1..${RUNTIME_POLICY_LIMITS.digestsPerPath} hex digests`);
    }
    const set = new Set<string>();
    for (const item of list) {
      const match = typeof item === 'string' ? DIGEST_HEX.exec(item) : null;
      if (match === null || (match[1] !== undefined && DIGEST_SIZES[match[1]] !== match[2]!.length)) {
        throw new RuntimePolicyError(`${field}[${JSON.stringify(name)}]`, `${JSON.stringify(item)} is not a lowercase hex digest (40–128 digits, optionally "alg:")`);
      }
      set.add(item);
    }
    table.set(name, set);
  }
  return table;
}

/** `verification-keys`: "" or a JSON-encoded IMA keyring `{"pubkeys": [base64 DER SPKI…], "keyids": [n…]}`. */
function verificationKeys(value: unknown): ImaVerificationKey[] {
  if (typeof value !== 'string') {
    throw new RuntimePolicyError('verification-keys', 'must be a string (a JSON-encoded keyring, or empty)');
  }
  if (value === '') {
    return [];
  }
  if (value.length > RUNTIME_POLICY_LIMITS.verificationKeysBytes) {
    throw new RuntimePolicyError('verification-keys', `longer than ${RUNTIME_POLICY_LIMITS.verificationKeysBytes} characters`);
  }
  let ring: unknown;
  try {
    ring = JSON.parse(value);
  } catch {
    throw new RuntimePolicyError('verification-keys', 'not JSON');
  }
  if (!isObject(ring) || !Array.isArray(ring.pubkeys)) {
    throw new RuntimePolicyError('verification-keys', 'must hold "pubkeys": [base64 DER public keys]');
  }
  if (ring.pubkeys.length > RUNTIME_POLICY_LIMITS.verificationKeys) {
    throw new RuntimePolicyError('verification-keys.pubkeys', `more than ${RUNTIME_POLICY_LIMITS.verificationKeys} keys`);
  }
  const keyIds = ring.keyids === undefined ? [] : ring.keyids;
  if (!Array.isArray(keyIds) || keyIds.some((id) => !Number.isInteger(id) || id < 0 || id > 0xffffffff)) {
    throw new RuntimePolicyError('verification-keys.keyids', 'must be a list of 32-bit key ids');
  }
  return ring.pubkeys.map((b64, i) => {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
      throw new RuntimePolicyError(`verification-keys.pubkeys[${i}]`, 'must be base64');
    }
    const key = verificationKeyFromSpki(Buffer.from(b64, 'base64'));
    if (typeof key === 'string') {
      throw new RuntimePolicyError(`verification-keys.pubkeys[${i}]`, key);
    }
    return { key, keyId: (keyIds[i] as number | undefined) ?? imaKeyId(key) };
  });
}
