import { generateKeyPairSync } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import {
  ed25519KeyId,
  ed25519PublicKeyOf,
  formatVerifierKey,
  isValidKeyName,
  keyIdHex,
  type NoteSigner,
  type NoteVerifier,
  parseVerifierKey,
  SignedNoteError,
  signNote,
  verifyNote,
} from './signed-note';

/**
 * Checkpoints of the audit log's Merkle tree, C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): the
 * note text is the origin, the tree size, the base64 RFC 6962 root hash, then optional extension
 * lines, each line ending in a newline; the note is signed per c2sp.org/signed-note.
 *
 * rackseal's audit checkpoints carry exactly one extension line, `timestamp <unix milliseconds>`,
 * the time the sequencer signed (docs/decisions.md, "Audit checkpoints and envelope encryption
 * (issue 11)"). The specification discourages extension lines because monitors cannot audit them;
 * the time is a claim of the log alone, for operators correlating a checkpoint with audit records.
 */

export type CheckpointProblem =
  | 'malformed-body'
  | 'empty-origin'
  | 'non-canonical-size'
  | 'size-out-of-range'
  | 'malformed-root-hash'
  | 'wrong-root-hash-length'
  | 'empty-extension'
  | 'missing-timestamp'
  | 'malformed-timestamp'
  | 'unexpected-extension'
  | 'origin-mismatch';

export class CheckpointError extends Error {
  constructor(
    readonly problem: CheckpointProblem,
    message: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

export interface Checkpoint {
  /** The log's identity; rackseal signs with a key of the same name (tlog-checkpoint §Signatures). */
  readonly origin: string;
  /** Number of leaves in the tree. */
  readonly size: number;
  /** RFC 6962 §2.1 Merkle tree hash at `size`, 32 bytes (SHA-256). */
  readonly rootHash: Buffer;
  /** Extension lines, without their newlines; opaque to the format. */
  readonly extensions: readonly string[];
}

/** A checkpoint whose signature verified, with the time its log signed it. */
export interface VerifiedCheckpoint extends Checkpoint {
  readonly time: Date;
}

/** What the sequencer signs: the tree head and the time it signs at. */
export interface CheckpointToSign {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Buffer;
  readonly time: Date;
}

/** The audit signing key pair: the private key stays SecretBytes, the rest is public. */
export interface AuditSigningKey {
  /** Ed25519 private key, PKCS#8 DER (RFC 8410 §7): seal it (libs/envelope) before storing it. */
  readonly privateKey: SecretBytes;
  /** Raw 32-byte Ed25519 public key (RFC 8032 §5.1.5). */
  readonly publicKey: Buffer;
  /** The note key ID, 8 lowercase hex digits. */
  readonly keyId: string;
  /** `<name>+<key ID>+<base64(0x01 ‖ public key)>`: what verifiers are configured with. */
  readonly verifierKey: string;
}

export const ROOT_HASH_BYTES = 32;

/** The extension line that holds the signing time: this prefix, then decimal Unix milliseconds. */
export const CHECKPOINT_TIMESTAMP_PREFIX = 'timestamp ';

/** The largest |milliseconds| a JS Date holds (ECMA-262 §21.4.1.22 TimeClip). */
const MAX_DATE_MS = 8_640_000_000_000_000;

/** Decimal without leading zeros, `0` alone for zero (tlog-checkpoint §Note text, item 2). */
const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;

/** The checkpoint's note text: origin, size, root hash and extension lines, each ending in a newline. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, rootHash, extensions } = checkpoint;
  if (origin.length === 0 || origin.includes('\n')) {
    throw new CheckpointError('empty-origin', 'the checkpoint origin must be one non-empty line');
  }
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new CheckpointError('size-out-of-range', `the tree size must be a non-negative safe integer, not ${size}`);
  }
  if (rootHash.length !== ROOT_HASH_BYTES) {
    throw new CheckpointError('wrong-root-hash-length', `the root hash is ${rootHash.length} bytes, not ${ROOT_HASH_BYTES}`);
  }
  for (const line of extensions) {
    if (line.length === 0 || line.includes('\n')) {
      throw new CheckpointError('empty-extension', 'an extension line must be one non-empty line');
    }
  }
  return [origin, String(size), rootHash.toString('base64'), ...extensions].map((line) => `${line}\n`).join('');
}

/** Reads a checkpoint's note text (after its signature was verified: the text means nothing before). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) {
    throw new CheckpointError('malformed-body', 'the checkpoint text must end with a newline');
  }
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) {
    throw new CheckpointError('malformed-body', `the checkpoint text has ${lines.length} lines; it needs origin, size and root hash`);
  }
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines;
  if (origin.length === 0) {
    throw new CheckpointError('empty-origin', 'the checkpoint origin line is empty');
  }
  if (!CANONICAL_DECIMAL.test(sizeText)) {
    throw new CheckpointError('non-canonical-size', `the tree size "${sizeText}" is not a decimal number without leading zeros`);
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) {
    throw new CheckpointError('size-out-of-range', `the tree size ${sizeText} is above 2^53 - 1`);
  }
  const rootHash = Buffer.from(rootText, 'base64');
  if (rootText.length === 0 || rootHash.toString('base64') !== rootText) {
    throw new CheckpointError('malformed-root-hash', 'the root hash line is not canonical base64');
  }
  if (rootHash.length !== ROOT_HASH_BYTES) {
    throw new CheckpointError('wrong-root-hash-length', `the root hash is ${rootHash.length} bytes, not ${ROOT_HASH_BYTES}`);
  }
  extensions.forEach((line, i) => {
    if (line.length === 0) {
      throw new CheckpointError('empty-extension', `extension line ${i + 1} is empty`);
    }
  });
  return { origin, size, rootHash, extensions };
}

/** Signs a checkpoint with the audit key; its name must be the origin. Returns the signed note. */
export function signCheckpoint(checkpoint: CheckpointToSign, signer: NoteSigner): string {
  if (signer.name !== checkpoint.origin) {
    throw new CheckpointError('origin-mismatch', `the signing key is named "${signer.name}" but the checkpoint origin is "${checkpoint.origin}"`);
  }
  const text = formatCheckpoint({
    origin: checkpoint.origin,
    size: checkpoint.size,
    rootHash: checkpoint.rootHash,
    extensions: [`${CHECKPOINT_TIMESTAMP_PREFIX}${timestampMs(checkpoint.time)}`],
  });
  return signNote(text, signer);
}

/**
 * Verifies a signed checkpoint against the audit verifier key and reads it: the signature by that
 * key must verify (other signatures, e.g. witnesses', are ignored per signed-note), the origin must
 * be the key's name, and the only extension line must be the timestamp.
 */
export function openCheckpoint(note: string | Buffer, verifierKey: string | NoteVerifier): VerifiedCheckpoint {
  const verifier = typeof verifierKey === 'string' ? parseVerifierKey(verifierKey) : verifierKey;
  const { text } = verifyNote(note, verifier);
  const checkpoint = parseCheckpoint(text);
  if (checkpoint.origin !== verifier.name) {
    throw new CheckpointError('origin-mismatch', `the checkpoint origin "${checkpoint.origin}" is not the key name "${verifier.name}"`);
  }
  const [timeLine, ...others] = checkpoint.extensions;
  if (timeLine === undefined) {
    throw new CheckpointError('missing-timestamp', `the checkpoint has no "${CHECKPOINT_TIMESTAMP_PREFIX}<unix ms>" extension line`);
  }
  if (others.length > 0) {
    throw new CheckpointError('unexpected-extension', `the checkpoint has ${others.length} extension lines after its timestamp; rackseal writes none`);
  }
  return { ...checkpoint, time: parseTimestampLine(timeLine) };
}

/** A new audit signing key named `name` (the log's origin). */
export function generateAuditSigningKey(name: string): AuditSigningKey {
  if (!isValidKeyName(name)) {
    throw new SignedNoteError('invalid-key-name', 'the audit key name must be non-empty, without spaces, "+" or control characters');
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const secret = new SecretBytes(der);
  der.fill(0);
  const publicKey = ed25519PublicKeyOf(secret);
  return {
    privateKey: secret,
    publicKey,
    keyId: keyIdHex(ed25519KeyId(name, publicKey)),
    verifierKey: formatVerifierKey(name, publicKey),
  };
}

function timestampMs(time: Date): number {
  const ms = time.getTime();
  if (!Number.isFinite(ms) || ms < 0) {
    throw new CheckpointError('malformed-timestamp', 'the checkpoint time must be a valid date at or after 1970-01-01T00:00:00Z');
  }
  return ms;
}

function parseTimestampLine(line: string): Date {
  if (!line.startsWith(CHECKPOINT_TIMESTAMP_PREFIX)) {
    throw new CheckpointError('missing-timestamp', `the checkpoint's extension line is not "${CHECKPOINT_TIMESTAMP_PREFIX}<unix ms>"`);
  }
  const digits = line.slice(CHECKPOINT_TIMESTAMP_PREFIX.length);
  if (!CANONICAL_DECIMAL.test(digits) || digits.length > 16 || Number(digits) > MAX_DATE_MS) {
    throw new CheckpointError('malformed-timestamp', `the checkpoint timestamp "${digits}" is not Unix milliseconds without leading zeros`);
  }
  return new Date(Number(digits));
}
