import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import { EnvelopeAuthenticationError, EnvelopeFormatError, EnvelopeKeyMismatchError } from './envelope-errors';

/**
 * Envelope encryption of a secret under the deployment's master key (docs/decisions.md, "Audit
 * checkpoints and envelope encryption"). Each sealed value gets its own fresh 256-bit data key
 * (DEK); the DEK encrypts the plaintext with AES-256-GCM and is itself AES-256-GCM-wrapped under
 * the master key (the key-encryption key, KEK). Both layers take the caller's context and the
 * header as additional authenticated data, so a blob moved to another row or purpose, or with an
 * edited header, does not open.
 *
 * Blob layout (version 1), all integers big-endian:
 *
 *   offset  size  field
 *   0       1     version (0x01)
 *   1       8     KEK ID: SHA-256(KEK_ID_DOMAIN ‖ master key)[:8]
 *   9       4     ciphertext length n
 *   13      12    nonce of the DEK wrap
 *   25      32    wrapped DEK
 *   57      16    GCM tag of the DEK wrap
 *   73      12    nonce of the data
 *   85      16    GCM tag of the data
 *   101     n     ciphertext
 *
 * AAD of layer L = LABEL_L ‖ blob[0..13) ‖ context, with LABEL_L fixed-length and distinct per layer.
 *
 * GCM per NIST SP 800-38D: 96-bit nonces (§5.2.1.1, the length the standard recommends) and
 * full 128-bit tags (§5.2.1.2). Nonces are random (§8.2.2); a DEK encrypts exactly one message and
 * the KEK one 32-byte DEK per seal, so the KEK stays far below the 2^32 random-nonce invocations
 * §8.3 allows per key.
 */

export const ENVELOPE_VERSION = 0x01;

const MASTER_KEY_BYTES = 32;
const DEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEK_ID_BYTES = 8;

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

// Versioned domain tags: the KEK ID is not a hash a master key is used for anywhere else, and the
// two layers' AAD differ, so a wrapped DEK cannot pass for data or the other way round.
const KEK_ID_DOMAIN = Buffer.from('rackseal.envelope.kek-id.v1\n');
const DEK_LABEL = Buffer.from('rackseal.envelope.v1.dek\n');
const DATA_LABEL = Buffer.from('rackseal.envelope.v1.dat\n');

/** Printable ASCII without spaces, like `audit-signing-key:3f2a…`: unambiguous bytes, safe in messages. */
const CONTEXT_PATTERN = /^[\x21-\x7e]{1,256}$/;

/** The largest plaintext sealed (the length field is 32 bits; nothing rackseal seals comes near). */
export const MAX_ENVELOPE_PLAINTEXT_BYTES = 16 * 1024 * 1024;

/** Hex KEK ID of a master key: what a blob sealed under it carries at bytes 1..8. */
export function envelopeKekId(masterKey: SecretBytes): string {
  return withMasterKey(masterKey, (kek) => kekIdOf(kek).toString('hex'));
}

/**
 * Seals `plaintext` for `context` under `masterKey`; two seals of the same input differ. `random`
 * draws the data key and the two nonces (the server passes its RandomSource; tests a fixed one).
 */
export function sealEnvelope(
  masterKey: SecretBytes,
  context: string,
  plaintext: SecretBytes | Buffer,
  random: (length: number) => Buffer = randomBytes,
): Buffer {
  const contextBytes = contextBytesOf(context);
  const data = plaintext instanceof SecretBytes ? plaintext.reveal() : plaintext;
  try {
    if (data.length > MAX_ENVELOPE_PLAINTEXT_BYTES) {
      throw new RangeError(`the plaintext is ${data.length} bytes; an envelope holds at most ${MAX_ENVELOPE_PLAINTEXT_BYTES}`);
    }
    return withMasterKey(masterKey, (kek) => {
      const header = Buffer.alloc(ENVELOPE_HEADER_BYTES);
      header[OFFSET.version] = ENVELOPE_VERSION;
      kekIdOf(kek).copy(header, OFFSET.kekId);
      header.writeUInt32BE(data.length, OFFSET.length);
      const authenticated = header.subarray(0, AUTHENTICATED_HEADER_BYTES);
      const dek = drawn(random, DEK_BYTES);
      try {
        const wrapNonce = drawn(random, NONCE_BYTES);
        const wrap = createCipheriv('aes-256-gcm', kek, wrapNonce, { authTagLength: TAG_BYTES });
        wrap.setAAD(Buffer.concat([DEK_LABEL, authenticated, contextBytes]));
        const wrappedDek = Buffer.concat([wrap.update(dek), wrap.final()]);
        wrapNonce.copy(header, OFFSET.wrapNonce);
        wrappedDek.copy(header, OFFSET.wrappedDek);
        wrap.getAuthTag().copy(header, OFFSET.wrapTag);

        const dataNonce = drawn(random, NONCE_BYTES);
        const cipher = createCipheriv('aes-256-gcm', dek, dataNonce, { authTagLength: TAG_BYTES });
        cipher.setAAD(Buffer.concat([DATA_LABEL, authenticated, contextBytes]));
        const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
        dataNonce.copy(header, OFFSET.dataNonce);
        cipher.getAuthTag().copy(header, OFFSET.dataTag);
        return Buffer.concat([header, ciphertext]);
      } finally {
        dek.fill(0);
      }
    });
  } finally {
    if (data !== plaintext) {
      data.fill(0);
    }
  }
}

/**
 * Opens a blob sealed by sealEnvelope for the same context under the same master key. Checks, in
 * order: the format (EnvelopeFormatError), the KEK ID (EnvelopeKeyMismatchError, no decryption
 * tried), then both GCM tags (EnvelopeAuthenticationError).
 */
export function openEnvelope(masterKey: SecretBytes, context: string, blob: Buffer): SecretBytes {
  const contextBytes = contextBytesOf(context);
  if (blob.length < 1) {
    throw new EnvelopeFormatError('the envelope is empty');
  }
  if (blob[OFFSET.version] !== ENVELOPE_VERSION) {
    throw new EnvelopeFormatError(
      `unknown envelope version 0x${(blob[OFFSET.version] ?? 0).toString(16).padStart(2, '0')} (this version reads 0x01)`,
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
  return withMasterKey(masterKey, (kek) => {
    const expectedKekId = kekIdOf(kek);
    const foundKekId = blob.subarray(OFFSET.kekId, OFFSET.kekId + KEK_ID_BYTES);
    if (!timingSafeEqual(expectedKekId, foundKekId)) {
      throw new EnvelopeKeyMismatchError(expectedKekId.toString('hex'), foundKekId.toString('hex'));
    }
    const authenticated = blob.subarray(0, AUTHENTICATED_HEADER_BYTES);
    const dek = decrypt(
      kek,
      blob.subarray(OFFSET.wrapNonce, OFFSET.wrappedDek),
      Buffer.concat([DEK_LABEL, authenticated, contextBytes]),
      blob.subarray(OFFSET.wrappedDek, OFFSET.wrapTag),
      blob.subarray(OFFSET.wrapTag, OFFSET.dataNonce),
      () => new EnvelopeAuthenticationError(context, 'data-key'),
    );
    try {
      const plaintext = decrypt(
        dek,
        blob.subarray(OFFSET.dataNonce, OFFSET.dataTag),
        Buffer.concat([DATA_LABEL, authenticated, contextBytes]),
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
  });
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

function kekIdOf(kek: Buffer): Buffer {
  return createHash('sha256').update(KEK_ID_DOMAIN).update(kek).digest().subarray(0, KEK_ID_BYTES);
}

/** Runs `use` with a copy of the master key's bytes and zeroes the copy afterwards. */
function withMasterKey<T>(masterKey: SecretBytes, use: (kek: Buffer) => T): T {
  if (!(masterKey instanceof SecretBytes)) {
    throw new TypeError('the master key must be given as SecretBytes');
  }
  if (masterKey.length !== MASTER_KEY_BYTES) {
    throw new RangeError(`the master key must be ${MASTER_KEY_BYTES} bytes, not ${masterKey.length}`);
  }
  const kek = masterKey.reveal();
  try {
    return use(kek);
  } finally {
    kek.fill(0);
  }
}

function contextBytesOf(context: string): Buffer {
  if (typeof context !== 'string' || !CONTEXT_PATTERN.test(context)) {
    throw new RangeError('the envelope context must be 1 to 256 printable ASCII characters without spaces (e.g. "audit-signing-key:<id>")');
  }
  return Buffer.from(context, 'ascii');
}
