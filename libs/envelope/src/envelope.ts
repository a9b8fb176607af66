import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import { EnvelopeAuthenticationError, EnvelopeFormatError, EnvelopeKeyMismatchError } from './envelope-errors';
import { DEK_BYTES, KEK_ID_BYTES, type MasterKeyInput, type MasterKeyProvider, type MasterKeys, masterKeysOf, WRAP_NONCE_BYTES, WRAPPED_DEK_BYTES } from './master-key';

/**
 * Envelope encryption of a secret under the deployment's master key (docs/decisions.md, "Audit
 * checkpoints and envelope encryption"). Each sealed value gets its own fresh 256-bit data key
 * (DEK); the DEK encrypts the plaintext with AES-256-GCM and is itself AES-256-GCM-wrapped under
 * the master key (the key-encryption key, KEK). Both layers take the caller's context and the
 * header as additional authenticated data, so a blob moved to another row or purpose, or with an
 * edited header, does not open.
 *
 * The KEK lives behind a MasterKeyProvider (master-key.ts): `env` (RACKSEAL_MASTER_KEY in memory)
 * or `pkcs11` (a non-extractable key on a token, which does the DEK wrap itself). Both wrap with
 * AES-256-GCM, so the layout is one for both; the KEK ID says which key.
 *
 * Blob layout (versions 1 and 2), all integers big-endian:
 *
 *   offset  size  field
 *   0       1     version (0x01 or 0x02; seals write 0x02)
 *   1       8     KEK ID: names the provider's key (env: SHA-256(domain ‖ master key)[:8];
 *                 pkcs11: a hash of the key's label and CKA_ID, see pkcs11-master-key.ts)
 *   9       4     ciphertext length n
 *   13      12    nonce of the DEK wrap
 *   25      32    wrapped DEK
 *   57      16    GCM tag of the DEK wrap
 *   73      12    nonce of the data
 *   85      16    GCM tag of the data
 *   101     n     ciphertext
 *
 * Version 1: AAD of layer L = LABEL_L ‖ blob[0..13) ‖ context, with LABEL_L fixed-length and distinct
 * per layer. Both layers thus authenticate the KEK ID, and moving a version-1 blob to another KEK
 * means re-encrypting its data too.
 * Version 2: the DEK layer's AAD is the same (DEK label v2 ‖ blob[0..13) ‖ context); the data layer's
 * AAD leaves the KEK ID out (data label v2 ‖ version ‖ length ‖ context), so a master-key rotation
 * re-wraps only the DEK (rewrapEnvelope) and never touches the data ciphertext. The data stays bound
 * to its context and length; the DEK, fresh per blob, is bound to its KEK and context by its wrap.
 *
 * GCM per NIST SP 800-38D: 96-bit nonces (§5.2.1.1, the length the standard recommends) and
 * full 128-bit tags (§5.2.1.2). Nonces are random (§8.2.2); a DEK encrypts exactly one message and
 * the KEK one 32-byte DEK per seal, so the KEK stays far below the 2^32 random-nonce invocations
 * §8.3 allows per key.
 */

export const ENVELOPE_VERSION = 0x02;
/** The version sealed before master-key providers (issue 11): still opened, converted by a rotation. */
export const ENVELOPE_VERSION_1 = 0x01;

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const OFFSET = {
  version: 0,
  kekId: 1,
  length: 9,
  wrapNonce: 13,
  wrappedDek: 25,
  wrapTag: 57,
  dataNonce: 73,
  dataTag: 85,
  ciphertext: 101,
} as const;

/** Bytes before the ciphertext. */
export const ENVELOPE_HEADER_BYTES = OFFSET.ciphertext;

/** The bytes of the header that are authenticated as AAD rather than used as GCM inputs. */
const AUTHENTICATED_HEADER_BYTES = OFFSET.wrapNonce;

// The two layers' AAD differ, so a wrapped DEK cannot pass for data or the other way round; the
// labels are versioned, so a version-2 blob relabelled as version 1 (or back) does not open.
const LABELS = {
  [ENVELOPE_VERSION_1]: { dek: Buffer.from('rackseal.envelope.v1.dek\n'), data: Buffer.from('rackseal.envelope.v1.dat\n') },
  [ENVELOPE_VERSION]: { dek: Buffer.from('rackseal.envelope.v2.dek\n'), data: Buffer.from('rackseal.envelope.v2.dat\n') },
} as const;

type Version = keyof typeof LABELS;

/** Printable ASCII without spaces, like `audit-signing-key:3f2a…`: unambiguous bytes, safe in messages. */
const CONTEXT_PATTERN = /^[\x21-\x7e]{1,256}$/;

/** The largest plaintext sealed (the length field is 32 bits; nothing rackseal seals comes near). */
export const MAX_ENVELOPE_PLAINTEXT_BYTES = 16 * 1024 * 1024;

/** Hex KEK ID of a master key (the current one of MasterKeys): what a blob sealed under it carries at bytes 1..8. */
export function envelopeKekId(masterKey: MasterKeyInput): string {
  return masterKeysOf(masterKey).current.kekId.toString('hex');
}

/** Hex KEK ID a blob names (bytes 1..8), after checking its format: which key a rotation must find. */
export function kekIdOfEnvelope(blob: Buffer): string {
  checkFormat(blob);
  return blob.subarray(OFFSET.kekId, OFFSET.kekId + KEK_ID_BYTES).toString('hex');
}

/**
 * Seals `plaintext` for `context` under the current master key; two seals of the same input
 * differ. `random` draws the data key and the two nonces (the server passes its RandomSource; tests
 * a fixed one).
 */
export function sealEnvelope(
  masterKey: MasterKeyInput,
  context: string,
  plaintext: SecretBytes | Buffer,
  random: (length: number) => Buffer = randomBytes,
): Buffer {
  const contextBytes = contextBytesOf(context);
  const kek = masterKeysOf(masterKey).current;
  const data = plaintext instanceof SecretBytes ? plaintext.reveal() : plaintext;
  try {
    if (data.length > MAX_ENVELOPE_PLAINTEXT_BYTES) {
      throw new RangeError(`the plaintext is ${data.length} bytes; an envelope holds at most ${MAX_ENVELOPE_PLAINTEXT_BYTES}`);
    }
    const header = Buffer.alloc(ENVELOPE_HEADER_BYTES);
    header[OFFSET.version] = ENVELOPE_VERSION;
    kek.kekId.copy(header, OFFSET.kekId);
    header.writeUInt32BE(data.length, OFFSET.length);
    const dek = drawn(random, DEK_BYTES);
    try {
      wrapInto(header, kek, dek, contextBytes, drawn(random, WRAP_NONCE_BYTES));
      const dataNonce = drawn(random, NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', dek, dataNonce, { authTagLength: TAG_BYTES });
      cipher.setAAD(dataAad(ENVELOPE_VERSION, header, contextBytes));
      const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
      dataNonce.copy(header, OFFSET.dataNonce);
      cipher.getAuthTag().copy(header, OFFSET.dataTag);
      return Buffer.concat([header, ciphertext]);
    } finally {
      dek.fill(0);
    }
  } finally {
    if (data !== plaintext) {
      data.fill(0);
    }
  }
}

/**
 * Opens a blob sealed by sealEnvelope for the same context, under whichever of the master keys its
 * KEK ID names. Checks, in order: the format (EnvelopeFormatError), the KEK ID
 * (EnvelopeKeyMismatchError, no decryption tried), then both GCM tags (EnvelopeAuthenticationError).
 */
export function openEnvelope(masterKey: MasterKeyInput, context: string, blob: Buffer): SecretBytes {
  const contextBytes = contextBytesOf(context);
  const version = checkFormat(blob);
  const keys = masterKeysOf(masterKey);
  const dek = unwrapFrom(blob, version, keys, context, contextBytes);
  try {
    const plaintext = decrypt(
      dek,
      blob.subarray(OFFSET.dataNonce, OFFSET.dataTag),
      dataAad(version, blob, contextBytes),
      blob.subarray(OFFSET.ciphertext),
      blob.subarray(OFFSET.dataTag, OFFSET.ciphertext),
      () => new EnvelopeAuthenticationError(context, 'data'),
    );
    try {
      return new SecretBytes(plaintext);
    } finally {
      plaintext.fill(0);
    }
  } finally {
    dek.fill(0);
  }
}

/**
 * The blob re-wrapped under `to` (a master-key rotation), or undefined when it already is under
 * `to` (a resumed rotation skips it). The blob must open under one of `from`'s keys: a version-2
 * blob keeps its data ciphertext byte for byte and gets a new DEK wrap (the DEK is checked against
 * the data tag before it is re-wrapped, so a modified blob is refused, not laundered); a version-1
 * blob, whose data layer authenticates the old KEK ID, is opened and sealed anew as version 2.
 */
export function rewrapEnvelope(
  from: MasterKeyInput,
  to: MasterKeyProvider,
  context: string,
  blob: Buffer,
  random: (length: number) => Buffer = randomBytes,
): Buffer | undefined {
  const contextBytes = contextBytesOf(context);
  const version = checkFormat(blob);
  if (blob.subarray(OFFSET.kekId, OFFSET.kekId + KEK_ID_BYTES).equals(to.kekId)) {
    return undefined;
  }
  if (version === ENVELOPE_VERSION_1) {
    const plaintext = openEnvelope(from, context, blob);
    return sealEnvelope(to, context, plaintext, random);
  }
  const dek = unwrapFrom(blob, version, masterKeysOf(from), context, contextBytes);
  try {
    // The DEK must open the data before it is given a new wrap.
    decrypt(
      dek,
      blob.subarray(OFFSET.dataNonce, OFFSET.dataTag),
      dataAad(version, blob, contextBytes),
      blob.subarray(OFFSET.ciphertext),
      blob.subarray(OFFSET.dataTag, OFFSET.ciphertext),
      () => new EnvelopeAuthenticationError(context, 'data'),
    ).fill(0);
    const rewrapped = Buffer.from(blob);
    to.kekId.copy(rewrapped, OFFSET.kekId);
    wrapInto(rewrapped, to, dek, contextBytes, drawn(random, WRAP_NONCE_BYTES));
    return rewrapped;
  } finally {
    dek.fill(0);
  }
}

/** Writes the DEK wrap (nonce, wrapped DEK, tag) of `header`'s version and KEK ID into `header`. */
function wrapInto(header: Buffer, kek: MasterKeyProvider, dek: Buffer, contextBytes: Buffer, nonce: Buffer): void {
  const version = header[OFFSET.version] as Version;
  const wrapped = kek.wrapDek(dek, nonce, dekAad(version, header, contextBytes));
  if (wrapped.length !== WRAPPED_DEK_BYTES) {
    throw new Error(`the master key provider ${kek.description} answered a ${wrapped.length}-byte DEK wrap, not ${WRAPPED_DEK_BYTES}`);
  }
  nonce.copy(header, OFFSET.wrapNonce);
  wrapped.copy(header, OFFSET.wrappedDek);
}

/** The blob's DEK, unwrapped by the key its KEK ID names. */
function unwrapFrom(blob: Buffer, version: Version, keys: MasterKeys, context: string, contextBytes: Buffer): Buffer {
  const foundKekId = blob.subarray(OFFSET.kekId, OFFSET.kekId + KEK_ID_BYTES);
  const kek = keys.find(foundKekId);
  if (kek === undefined) {
    throw new EnvelopeKeyMismatchError(keys.current.kekId.toString('hex'), foundKekId.toString('hex'));
  }
  const dek = kek.unwrapDek(
    blob.subarray(OFFSET.wrappedDek, OFFSET.dataNonce),
    blob.subarray(OFFSET.wrapNonce, OFFSET.wrappedDek),
    dekAad(version, blob, contextBytes),
  );
  if (dek === undefined || dek.length !== DEK_BYTES) {
    dek?.fill(0);
    throw new EnvelopeAuthenticationError(context, 'data-key');
  }
  return dek;
}

function dekAad(version: Version, blob: Buffer, contextBytes: Buffer): Buffer {
  return Buffer.concat([LABELS[version].dek, blob.subarray(0, AUTHENTICATED_HEADER_BYTES), contextBytes]);
}

function dataAad(version: Version, blob: Buffer, contextBytes: Buffer): Buffer {
  const authenticated =
    version === ENVELOPE_VERSION_1
      ? blob.subarray(0, AUTHENTICATED_HEADER_BYTES)
      : Buffer.concat([blob.subarray(OFFSET.version, OFFSET.kekId), blob.subarray(OFFSET.length, OFFSET.wrapNonce)]);
  return Buffer.concat([LABELS[version].data, authenticated, contextBytes]);
}

/** The blob's version once its framing is sound: known version, header present, length matching. */
function checkFormat(blob: Buffer): Version {
  if (blob.length < 1) {
    throw new EnvelopeFormatError('the envelope is empty');
  }
  const version = blob[OFFSET.version];
  if (version !== ENVELOPE_VERSION && version !== ENVELOPE_VERSION_1) {
    throw new EnvelopeFormatError(
      `unknown envelope version 0x${(version ?? 0).toString(16).padStart(2, '0')} (this version reads 0x01 and 0x02)`,
    );
  }
  if (blob.length < ENVELOPE_HEADER_BYTES) {
    throw new EnvelopeFormatError(`the envelope is truncated: ${blob.length} bytes, shorter than its ${ENVELOPE_HEADER_BYTES}-byte header`);
  }
  const declared = blob.readUInt32BE(OFFSET.length);
  const actual = blob.length - ENVELOPE_HEADER_BYTES;
  if (actual < declared) {
    throw new EnvelopeFormatError(`the envelope is truncated: ${actual} bytes of ciphertext, its header says ${declared}`);
  }
  if (actual > declared) {
    throw new EnvelopeFormatError(`the envelope has ${actual - declared} trailing bytes after its ${declared}-byte ciphertext`);
  }
  return version;
}

/** AES-256-GCM decryption; a refused tag becomes the caller's typed error, partial output is zeroed. */
function decrypt(key: Buffer, nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer, refused: () => Error): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const head = decipher.update(ciphertext);
  try {
    return Buffer.concat([head, decipher.final()]);
  } catch {
    throw refused();
  } finally {
    head.fill(0);
  }
}

/** A copy of `length` bytes from the random source, checked: a short draw would be a weak key or nonce. */
function drawn(random: (length: number) => Buffer, length: number): Buffer {
  const bytes = random(length);
  if (!Buffer.isBuffer(bytes) || bytes.length !== length) {
    throw new RangeError(`the random source gave ${Buffer.isBuffer(bytes) ? bytes.length : 'no'} bytes, not ${length}`);
  }
  const copy = Buffer.from(bytes);
  bytes.fill(0);
  return copy;
}

function contextBytesOf(context: string): Buffer {
  if (typeof context !== 'string' || !CONTEXT_PATTERN.test(context)) {
    throw new RangeError('the envelope context must be 1 to 256 printable ASCII characters without spaces (e.g. "audit-signing-key:<id>")');
  }
  return Buffer.from(context, 'ascii');
}
