import { constants, createHash, createPublicKey, type KeyObject, publicDecrypt } from 'node:crypto';
import { verifyEcdsaPrehashed, supportsCurve } from './ecdsa-prehashed';
import { algorithmOfLinuxId, type ImaHashAlgorithm } from './hash-algorithms';
import type { ImaFileDigest } from './ima-entry';

/**
 * IMA file signatures, format v2 (security/integrity/integrity.h, struct signature_v2_hdr;
 * digsig_asymmetric.c, asymmetric_verify), big-endian:
 *   u8 type (0x03 EVM_IMA_XATTR_DIGSIG, or 0x05 EVM_XATTR_PORTABLE_DIGSIG) ‖ u8 version = 2 ‖
 *   u8 hash_algo (enum hash_algo) ‖ u32 keyid ‖ u16 sig_size ‖ signature[sig_size]
 * The signature is over the file's digest: RSA PKCS#1 v1.5 with the algorithm's DigestInfo, or
 * ECDSA (DER) over the digest.
 */
export interface ImaSignatureV2 {
  readonly type: number;
  readonly hashAlgorithm: ImaHashAlgorithm;
  readonly keyId: number;
  readonly signature: Buffer;
}

export const EVM_IMA_XATTR_DIGSIG = 0x03;
export const EVM_XATTR_PORTABLE_DIGSIG = 0x05;
const HEADER = 9;

/** Parses the header; a string saying why when it is not a v2 signature this library can check. */
export function parseImaSignature(bytes: Buffer): ImaSignatureV2 | string {
  if (bytes.length < HEADER) {
    return `signature header needs ${HEADER} bytes, has ${bytes.length}`;
  }
  const type = bytes[0]!;
  if (type !== EVM_IMA_XATTR_DIGSIG && type !== EVM_XATTR_PORTABLE_DIGSIG) {
    return `signature type 0x${type.toString(16)} is not a digital signature (0x03 or 0x05)`;
  }
  if (bytes[1] !== 2) {
    return `signature format version ${bytes[1]} (only version 2 is supported)`;
  }
  const hashAlgorithm = algorithmOfLinuxId(bytes[2]!);
  if (hashAlgorithm === undefined) {
    return `unsupported signature hash algorithm ${bytes[2]}`;
  }
  const size = bytes.readUInt16BE(7);
  if (HEADER + size !== bytes.length) {
    return `signature size field says ${size} bytes, ${bytes.length - HEADER} follow`;
  }
  return { type, hashAlgorithm, keyId: bytes.readUInt32BE(3), signature: bytes.subarray(HEADER) };
}

/** A verification key and its IMA key id. */
export interface ImaVerificationKey {
  readonly key: KeyObject;
  readonly keyId: number;
}

/**
 * The v2 key id of a public key: the last four bytes of SHA-1 over the RSA key's PKCS#1 DER
 * (RSAPublicKey) or the EC key's uncompressed point — what evmctl writes and the subject key
 * identifier of the certificates IMA keys usually come in.
 */
export function imaKeyId(key: KeyObject): number {
  let bytes: Buffer;
  if (key.asymmetricKeyType === 'rsa') {
    bytes = key.export({ type: 'pkcs1', format: 'der' });
  } else if (key.asymmetricKeyType === 'ec') {
    const jwk = key.export({ format: 'jwk' });
    bytes = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  } else {
    throw new Error(`unsupported key type ${String(key.asymmetricKeyType)}`);
  }
  return createHash('sha1').update(bytes).digest().readUInt32BE(16);
}

/** A public key from DER SubjectPublicKeyInfo, if it is an RSA key or an EC key of a supported curve. */
export function verificationKeyFromSpki(der: Buffer): KeyObject | string {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return 'not a DER SubjectPublicKeyInfo';
  }
  if (key.asymmetricKeyType === 'rsa') {
    return key;
  }
  if (key.asymmetricKeyType === 'ec' && supportsCurve(key.asymmetricKeyDetails?.namedCurve)) {
    return key;
  }
  return `unsupported key (${String(key.asymmetricKeyType)} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trim();
}

// DigestInfo prefixes (RFC 8017 §9.2, note 1).
const DIGEST_INFO: Record<ImaHashAlgorithm, string> = {
  md5: '3020300c06082a864886f70d020505000410',
  sha1: '3021300906052b0e03021a05000414',
  sha224: '302d300d06096086480165030402040500041c',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** `malformed`: the field is not a v2 signature this library can check (as opposed to one that does not verify). */
export type SignatureCheck = { readonly ok: true; readonly keyId: number } | { readonly ok: false; readonly malformed: boolean; readonly reason: string };

/** Checks an ima-sig entry's signature over its file digest with the keys given. */
export function verifyImaSignature(signatureField: Buffer, digest: ImaFileDigest, keys: readonly ImaVerificationKey[]): SignatureCheck {
  const parsed = parseImaSignature(signatureField);
  if (typeof parsed === 'string') {
    return { ok: false, malformed: true, reason: parsed };
  }
  if (parsed.hashAlgorithm !== digest.algorithm) {
    return { ok: false, malformed: false, reason: `signature over a ${parsed.hashAlgorithm} digest, the entry's is ${digest.algorithm}` };
  }
  const candidates = keys.filter((k) => k.keyId === parsed.keyId);
  if (candidates.length === 0) {
    return { ok: false, malformed: false, reason: `no verification key with id 0x${parsed.keyId.toString(16).padStart(8, '0')}` };
  }
  for (const { key, keyId } of candidates) {
    if (verifyWith(key, parsed, digest.digest)) {
      return { ok: true, keyId };
    }
  }
  return { ok: false, malformed: false, reason: `the signature does not verify with key 0x${parsed.keyId.toString(16).padStart(8, '0')}` };
}

function verifyWith(key: KeyObject, sig: ImaSignatureV2, digest: Buffer): boolean {
  if (key.asymmetricKeyType === 'ec') {
    return verifyEcdsaPrehashed(key, digest, sig.signature);
  }
  try {
    const recovered = publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, sig.signature);
    return recovered.equals(Buffer.concat([Buffer.from(DIGEST_INFO[sig.hashAlgorithm], 'hex'), digest]));
  } catch {
    return false;
  }
}
