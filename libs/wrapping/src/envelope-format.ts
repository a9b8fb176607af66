// Single files of libs/tpm2, not its index: the agent's boot unlock parses envelopes and loads only
// what it runs (docs/decisions.md "Boot unlock loads single files").
import { TpmParseError } from '@rackseal/tpm2/codec/tpm-parse-error';
import { TpmReader } from '@rackseal/tpm2/codec/tpm-reader';
import { marshal, type TpmWriter } from '@rackseal/tpm2/codec/tpm-writer';
import { TPM_ALG_ID, TPM_ECC_CURVE } from '@rackseal/tpm2/constants';
import { hashAlgorithm, isHashAlgorithm } from '@rackseal/tpm2/hash-algorithms';
import { readTpm2bEncryptedSecret } from '@rackseal/tpm2/structures/tpm2b-encrypted-secret';
import { readTpm2bPrivate } from '@rackseal/tpm2/structures/tpm2b-private';
import { type ParsedPublic, readTpm2bPublic, type TPMS_ECC_POINT } from '@rackseal/tpm2/structures/tpmt-public';
import { EnvelopeAlgorithmError, EnvelopeFormatError, EnvelopeTooLargeError, EnvelopeVersionError } from './wrapping-errors';

/**
 * The wrapped-secret envelope (docs/decisions.md "Wrapping and the envelope format"): what the
 * control plane sends a machine, readable only inside that machine's TPM. Self-describing (format
 * version, binding, algorithms, recipient) and with no secret in clear: the payload is AES-256-GCM
 * encrypted under a content key that travels only in its TPM-bound form.
 *
 * Version 1, big-endian, sizes as TPM2B (u16 size ‖ bytes) via libs/tpm2's codec:
 *
 *   u32   magic "RSWE"
 *   u8    version 1
 *   u8    binding            1 certified-key, 2 pcr-sealed
 *   u16   aead               2 = AEAD_AES_256_GCM (RFC 5116 §6)
 *   TPM2B deliveryId         1-128 printable ASCII octets, no space
 *   u32   secretVersion      ≥ 1
 *   TPM2B recipient          certified-key: the certified key's Name (Part 1 §16);
 *                            pcr-sealed: the EK's ekPubHash (SHA-256 of its SPKI DER, 32 octets)
 *   certified-key:
 *     u16   keyTransport     TPM_ALG_OAEP or TPM_ALG_ECDH
 *     u16   hashAlg          OAEP hash and MGF1 / KDFe hash
 *     OAEP: TPM2B encryptedKey           RSAES-OAEP ciphertext of the content key
 *     ECDH: u16 curveID ‖ TPM2B x ‖ TPM2B y   the ephemeral public point
 *   pcr-sealed:
 *     u16   policyHashAlg    SHA-256: the sealed object's nameAlg and policy hash
 *     TPM2B group            1-255 UTF-8 octets, no control character
 *     u32   epoch            ≥ 1
 *     TPM2B signingKeyName   the PCR-approval signing key's Name
 *     TPM2B_PUBLIC ‖ TPM2B_PRIVATE ‖ TPM2B_ENCRYPTED_SECRET   the import blob (Part 3 §13.3)
 *   u8[12] nonce             GCM IV (NIST SP 800-38D §5.2.1.1: 96 bits)
 *   u32   ciphertextLength   ≤ MAX_PAYLOAD_BYTES
 *   ----- header ends: everything above is the GCM additional authenticated data
 *   u8[n] ciphertext
 *   u8[16] tag               full 128-bit GCM tag (SP 800-38D §5.2.1.2)
 *
 * Nothing follows the tag. Any unknown version, binding or algorithm, any field out of its bounds,
 * a truncated or over-long envelope is refused before any key is touched.
 */

export const ENVELOPE_MAGIC = 0x52535745;
export const ENVELOPE_VERSION = 1;
/** RFC 5116 §6 AEAD registry: AEAD_AES_256_GCM. The only content cipher. */
export const AEAD_AES_256_GCM = 2;

export const CONTENT_KEY_BYTES = 32;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/**
 * The largest payload wrapped: a kubelet credential or a TLS key with its chain is a few KiB, a
 * disk key 64 bytes. 1 MiB bounds what an agent reads into memory from one envelope.
 */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Header bounds: every field's limit below adds to well under 8 KiB. */
const MAX_HEADER_BYTES = 8 * 1024;
/**
 * What a header usually fits, so its writer is allocated once: ~350 bytes for RSA-2048 OAEP, ~650
 * for a pcr-sealed import blob under an RSA-2048 EK, ~900 under RSA-4096. A longer one grows.
 */
const HEADER_CAPACITY = 1024;
export const MAX_ENVELOPE_BYTES = MAX_HEADER_BYTES + MAX_PAYLOAD_BYTES + GCM_TAG_BYTES;

const MAX_DELIVERY_ID_BYTES = 128;
const DELIVERY_ID_PATTERN = /^[\x21-\x7e]{1,128}$/;
const MAX_GROUP_BYTES = 255;
/** TPM2B_NAME (Part 2 §10.5.3): a nameAlg and its digest, at most 2 + 64. */
const MAX_NAME_BYTES = 66;
const EK_PUB_HASH_BYTES = 32;
/** Part 2 TPM2B_PUBLIC_KEY_RSA (MAX_RSA_KEY_BYTES) and TPM2B_ECC_PARAMETER (MAX_ECC_KEY_BYTES). */
const MAX_RSA_CIPHERTEXT_BYTES = 512;
const MAX_ECC_COORDINATE_BYTES = 128;

export type EnvelopeBinding = 'certified-key' | 'pcr-sealed';
const BINDING_CODE: Readonly<Record<EnvelopeBinding, number>> = { 'certified-key': 1, 'pcr-sealed': 2 };

/** The content key to the certified key by RSAES-OAEP, undone by TPM2_RSA_Decrypt. */
export interface OaepKeyTransport {
  readonly binding: 'certified-key';
  readonly keyTransport: typeof TPM_ALG_ID.TPM_ALG_OAEP;
  /** The certified key's Name. */
  readonly recipient: Buffer;
  readonly hashAlg: number;
  readonly encryptedKey: Buffer;
}

/** The content key from one-pass ECDH with the certified key and KDFe; Z recovered by TPM2_ECDH_ZGen. */
export interface EcdhKeyTransport {
  readonly binding: 'certified-key';
  readonly keyTransport: typeof TPM_ALG_ID.TPM_ALG_ECDH;
  readonly recipient: Buffer;
  readonly hashAlg: number;
  readonly curveID: number;
  readonly ephemeral: TPMS_ECC_POINT;
}

/** The content key sealed in an import blob under the EK, to PolicyAuthorize(signing key, policyRef(group, epoch)). */
export interface PcrSealedKeyTransport {
  readonly binding: 'pcr-sealed';
  /** The EK's ekPubHash (32 octets). */
  readonly recipient: Buffer;
  readonly policyHashAlg: number;
  readonly group: string;
  readonly epoch: number;
  readonly signingKeyName: Buffer;
  /** The three marshalled TPM2Bs TPM2_Import takes (libs/tpm2 SealedImportBlob). */
  readonly blob: { readonly public: Buffer; readonly duplicate: Buffer; readonly inSymSeed: Buffer };
}

export type KeyTransport = OaepKeyTransport | EcdhKeyTransport | PcrSealedKeyTransport;

/** What the header says: who, which delivery, and how the content key travels. */
export interface EnvelopeHeader {
  readonly deliveryId: string;
  readonly secretVersion: number;
  readonly transport: KeyTransport;
}

export interface ParsedEnvelope extends EnvelopeHeader {
  /** The exact header bytes: the GCM AAD. */
  readonly header: Buffer;
  readonly nonce: Buffer;
  readonly ciphertext: Buffer;
  readonly tag: Buffer;
}

function checkDeliveryId(deliveryId: string): Buffer {
  if (!DELIVERY_ID_PATTERN.test(deliveryId)) {
    throw new EnvelopeFormatError(`deliveryId must be 1-${MAX_DELIVERY_ID_BYTES} printable ASCII characters without spaces`);
  }
  return Buffer.from(deliveryId, 'latin1');
}

function checkSecretVersion(version: number): void {
  if (!Number.isInteger(version) || version < 1 || version > 0xffffffff) {
    throw new EnvelopeFormatError(`secretVersion must be an integer from 1 to 2^32-1, got ${version}`);
  }
}

function checkEpoch(epoch: number): void {
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) {
    throw new EnvelopeFormatError(`epoch must be an integer from 1 to 2^32-1, got ${epoch}`);
  }
}

function checkGroup(group: string): Buffer {
  const bytes = Buffer.from(group, 'utf8');
  // eslint-disable-next-line no-control-regex
  if (bytes.length === 0 || bytes.length > MAX_GROUP_BYTES || /[\u0000-\u001f\u007f]/.test(group) || bytes.toString('utf8') !== group) {
    throw new EnvelopeFormatError(`group must be 1-${MAX_GROUP_BYTES} UTF-8 octets without control characters`);
  }
  return bytes;
}

/** A TPM2B_NAME of a key: a known nameAlg followed by exactly its digest. */
function checkName(name: Buffer, field: string): Buffer {
  if (name.length < 2 || !isHashAlgorithm(name.readUInt16BE(0)) || name.length !== 2 + hashAlgorithm(name.readUInt16BE(0)).size) {
    throw new EnvelopeFormatError(`${field} is not a key's Name (a nameAlg and its digest)`);
  }
  return name;
}

function checkHashAlg(alg: number, field: string): number {
  if (!isHashAlgorithm(alg) || alg === TPM_ALG_ID.TPM_ALG_SHA1 || hashAlgorithm(alg).size < CONTENT_KEY_BYTES) {
    throw new EnvelopeAlgorithmError(field, alg);
  }
  return alg;
}

const ECDH_CURVES = new Set<number>([TPM_ECC_CURVE.TPM_ECC_NIST_P256, TPM_ECC_CURVE.TPM_ECC_NIST_P384, TPM_ECC_CURVE.TPM_ECC_NIST_P521]);

function writeTransport(w: TpmWriter, t: KeyTransport): void {
  switch (t.binding) {
    case 'certified-key':
      w.tpm2b(checkName(t.recipient, 'recipient'));
      w.u16(t.keyTransport).u16(checkHashAlg(t.hashAlg, 'hashAlg'));
      if (t.keyTransport === TPM_ALG_ID.TPM_ALG_OAEP) {
        w.tpm2b(t.encryptedKey);
      } else {
        w.u16(t.curveID).tpm2b(t.ephemeral.x).tpm2b(t.ephemeral.y);
      }
      return;
    case 'pcr-sealed':
      if (t.recipient.length !== EK_PUB_HASH_BYTES) {
        throw new EnvelopeFormatError('recipient of a pcr-sealed envelope must be the EK\'s 32-octet ekPubHash');
      }
      checkEpoch(t.epoch);
      w.tpm2b(t.recipient).u16(t.policyHashAlg).tpm2b(checkGroup(t.group)).u32(t.epoch).tpm2b(checkName(t.signingKeyName, 'signingKeyName'));
      w.bytes(t.blob.public).bytes(t.blob.duplicate).bytes(t.blob.inSymSeed);
      return;
  }
}

/** The header bytes (the GCM AAD) of an envelope whose ciphertext is `ciphertextLength` bytes. */
export function encodeEnvelopeHeader(header: EnvelopeHeader, nonce: Buffer, ciphertextLength: number): Buffer {
  const deliveryId = checkDeliveryId(header.deliveryId);
  checkSecretVersion(header.secretVersion);
  if (nonce.length !== GCM_NONCE_BYTES) {
    throw new RangeError(`the GCM nonce must be ${GCM_NONCE_BYTES} bytes`);
  }
  if (ciphertextLength > MAX_PAYLOAD_BYTES) {
    throw new EnvelopeTooLargeError('payload', ciphertextLength, MAX_PAYLOAD_BYTES);
  }
  const bytes = marshal((w) => {
    w.u32(ENVELOPE_MAGIC).u8(ENVELOPE_VERSION).u8(BINDING_CODE[header.transport.binding]).u16(AEAD_AES_256_GCM);
    w.tpm2b(deliveryId).u32(header.secretVersion);
    writeTransport(w, header.transport);
    w.bytes(nonce).u32(ciphertextLength);
  }, HEADER_CAPACITY);
  if (bytes.length > MAX_HEADER_BYTES) {
    throw new EnvelopeFormatError(`the header is ${bytes.length} bytes, over ${MAX_HEADER_BYTES}`);
  }
  return bytes;
}

function readCertifiedKey(r: TpmReader): OaepKeyTransport | EcdhKeyTransport {
  const recipient = checkName(r.tpm2b('recipient', MAX_NAME_BYTES), 'recipient');
  const keyTransport = r.u16('keyTransport');
  const hashAlg = checkHashAlg(r.u16('hashAlg'), 'hashAlg');
  if (keyTransport === TPM_ALG_ID.TPM_ALG_OAEP) {
    const encryptedKey = r.tpm2b('encryptedKey', MAX_RSA_CIPHERTEXT_BYTES);
    if (encryptedKey.length === 0) {
      throw new EnvelopeFormatError('encryptedKey is empty');
    }
    return { binding: 'certified-key', keyTransport, recipient, hashAlg, encryptedKey };
  }
  if (keyTransport === TPM_ALG_ID.TPM_ALG_ECDH) {
    const curveID = r.u16('curveID');
    if (!ECDH_CURVES.has(curveID)) {
      throw new EnvelopeAlgorithmError('curveID', curveID);
    }
    const x = r.tpm2b('ephemeral.x', MAX_ECC_COORDINATE_BYTES);
    const y = r.tpm2b('ephemeral.y', MAX_ECC_COORDINATE_BYTES);
    return { binding: 'certified-key', keyTransport, recipient, hashAlg, curveID, ephemeral: { x, y } };
  }
  throw new EnvelopeAlgorithmError('keyTransport', keyTransport);
}

function readPcrSealed(r: TpmReader): PcrSealedKeyTransport {
  const recipient = r.tpm2b('recipient', EK_PUB_HASH_BYTES);
  if (recipient.length !== EK_PUB_HASH_BYTES) {
    throw new EnvelopeFormatError('recipient of a pcr-sealed envelope must be the EK\'s 32-octet ekPubHash');
  }
  const policyHashAlg = r.u16('policyHashAlg');
  if (policyHashAlg !== TPM_ALG_ID.TPM_ALG_SHA256) {
    throw new EnvelopeAlgorithmError('policyHashAlg', policyHashAlg);
  }
  const groupBytes = r.tpm2b('group', MAX_GROUP_BYTES);
  const group = groupBytes.toString('utf8');
  checkGroup(group);
  if (!Buffer.from(group, 'utf8').equals(groupBytes)) {
    throw new EnvelopeFormatError('group is not UTF-8');
  }
  const epoch = r.u32('epoch');
  checkEpoch(epoch);
  const signingKeyName = checkName(r.tpm2b('signingKeyName', MAX_NAME_BYTES), 'signingKeyName');
  let start = r.offset;
  const objectPublic: ParsedPublic = readTpm2bPublic(r);
  const publicBytes = r.rawSince(start);
  if (objectPublic.type !== TPM_ALG_ID.TPM_ALG_KEYEDHASH || objectPublic.nameAlg !== policyHashAlg || objectPublic.authPolicy.length !== hashAlgorithm(policyHashAlg).size) {
    throw new EnvelopeFormatError('the import blob\'s public area is not a sealed data object with a SHA-256 policy');
  }
  start = r.offset;
  readTpm2bPrivate(r);
  const duplicate = r.rawSince(start);
  start = r.offset;
  readTpm2bEncryptedSecret(r);
  const inSymSeed = r.rawSince(start);
  return { binding: 'pcr-sealed', recipient, policyHashAlg, group, epoch, signingKeyName, blob: { public: publicBytes, duplicate, inSymSeed } };
}

/**
 * Parses an envelope strictly: magic, version, binding, algorithms and every field's bounds, the
 * ciphertext's length against its field and the limit, and nothing after the tag. Refusals:
 * EnvelopeTooLargeError, EnvelopeVersionError, EnvelopeAlgorithmError, else EnvelopeFormatError
 * naming the field. Decrypts nothing.
 */
export function parseEnvelope(bytes: Buffer): ParsedEnvelope {
  if (bytes.length > MAX_ENVELOPE_BYTES) {
    throw new EnvelopeTooLargeError('envelope', bytes.length, MAX_ENVELOPE_BYTES);
  }
  const r = TpmReader.from(bytes, 'envelope');
  try {
    const magic = r.u32('magic');
    if (magic !== ENVELOPE_MAGIC) {
      throw new EnvelopeFormatError(`magic 0x${magic.toString(16).padStart(8, '0')} is not "RSWE"`);
    }
    const version = r.u8('version');
    if (version !== ENVELOPE_VERSION) {
      throw new EnvelopeVersionError(version);
    }
    const bindingCode = r.u8('binding');
    const aead = r.u16('aead');
    if (aead !== AEAD_AES_256_GCM) {
      throw new EnvelopeAlgorithmError('aead', aead);
    }
    const deliveryId = r.tpm2b('deliveryId', MAX_DELIVERY_ID_BYTES).toString('latin1');
    checkDeliveryId(deliveryId);
    const secretVersion = r.u32('secretVersion');
    checkSecretVersion(secretVersion);
    let transport: KeyTransport;
    if (bindingCode === BINDING_CODE['certified-key']) {
      transport = readCertifiedKey(r);
    } else if (bindingCode === BINDING_CODE['pcr-sealed']) {
      transport = readPcrSealed(r);
    } else {
      throw new EnvelopeFormatError(`binding ${bindingCode} is neither certified-key (1) nor pcr-sealed (2)`);
    }
    const nonce = r.bytesOf(GCM_NONCE_BYTES, 'nonce');
    const length = r.u32('ciphertextLength');
    if (length > MAX_PAYLOAD_BYTES) {
      throw new EnvelopeTooLargeError('payload', length, MAX_PAYLOAD_BYTES);
    }
    const header = Buffer.from(bytes.subarray(0, r.offset));
    const ciphertext = r.bytesOf(length, 'ciphertext');
    const tag = r.bytesOf(GCM_TAG_BYTES, 'tag');
    r.end();
    return { deliveryId, secretVersion, transport, header, nonce, ciphertext, tag };
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw new EnvelopeFormatError(`${error.field} at offset ${error.offset}: ${error.reason}`);
    }
    throw error;
  }
}
