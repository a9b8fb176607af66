import { createHash, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { algName, TPM_ALG_ID, TPM_ECC_CURVE } from './constants';
import { KeyObjectCache } from './key-object-cache';
import type { EccPublic, RsaPublic, TPMT_PUBLIC } from './structures/tpmt-public';

/** Thrown when a key cannot be expressed in the other representation (unsupported curve, size, type). */
export class KeyConversionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyConversionError';
  }
}

interface CurveInfo {
  readonly curveID: number;
  /** JOSE name, as node:crypto's JWK import/export uses it. */
  readonly jwk: string;
  /** Coordinate size in bytes. */
  readonly size: number;
}

const CURVES: readonly CurveInfo[] = [
  { curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256, jwk: 'P-256', size: 32 },
  { curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P384, jwk: 'P-384', size: 48 },
  { curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P521, jwk: 'P-521', size: 66 },
];

export function curveById(curveID: number): CurveInfo {
  const curve = CURVES.find((c) => c.curveID === curveID);
  if (curve === undefined) {
    throw new KeyConversionError(`unsupported ECC curve 0x${curveID.toString(16).padStart(4, '0')}`);
  }
  return curve;
}

function curveByJwk(name: string | undefined): CurveInfo {
  const curve = CURVES.find((c) => c.jwk === name);
  if (curve === undefined) {
    throw new KeyConversionError(`unsupported ECC curve ${name ?? '(none)'}`);
  }
  return curve;
}

/** Left-pads a big-endian integer to `size` bytes (TPMs may drop leading zeros of ECC coordinates). */
export function leftPad(value: Buffer, size: number): Buffer {
  if (value.length > size) {
    throw new KeyConversionError(`value of ${value.length} bytes does not fit ${size}`);
  }
  return value.length === size ? value : Buffer.concat([Buffer.alloc(size - value.length), value]);
}

/**
 * Public areas whose KeyObject was made recently. ~6 KiB each once used (measured RSA-2048), so
 * ≤ ~6 MiB: the certified keys and EKs of a delivery run, the AKs of an attestation wave.
 */
const KEY_OBJECTS = new KeyObjectCache(1024);

/**
 * Empties the cache of public KeyObjects. For the agent's startup snapshot, whose build-time warm-up
 * makes some (apps/agent/src/unlock-snapshot-warm.ts): `node --build-snapshot` aborts on a live
 * KeyObject, which holds an OpenSSL key outside V8's heap.
 */
export function forgetPublicKeyObjects(): void {
  KEY_OBJECTS.clear();
}

/**
 * The public key of an RSA or ECC TPMT_PUBLIC as a node:crypto KeyObject, the same object for the
 * same key while it stays in KEY_OBJECTS. Keyed by what determines the key and nothing else: the
 * RSA exponent and modulus, the ECC curve and point (coordinates as given, their length first so
 * x ‖ y splits one way only).
 */
export function publicKeyFromTpmt(pub: TPMT_PUBLIC): KeyObject {
  switch (pub.type) {
    case TPM_ALG_ID.TPM_ALG_RSA: {
      if (pub.unique.length === 0) {
        throw new KeyConversionError('RSA public area has an empty modulus');
      }
      const exponent = pub.parameters.exponent === 0 ? 65537 : pub.parameters.exponent;
      return KEY_OBJECTS.get(`rsa ${exponent} ${pub.unique.toString('latin1')}`, () => rsaKeyObject(pub.unique, exponent));
    }
    case TPM_ALG_ID.TPM_ALG_ECC: {
      const curve = curveById(pub.parameters.curveID);
      const { x, y } = pub.unique;
      return KEY_OBJECTS.get(`ecc ${curve.curveID} ${x.length} ${x.toString('latin1')}${y.toString('latin1')}`, () => eccKeyObject(curve, x, y));
    }
    default:
      throw new KeyConversionError(`${algName(pub.type)} objects have no asymmetric public key`);
  }
}

function rsaKeyObject(modulus: Buffer, exponent: number): KeyObject {
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent);
  return createPublicKey({
    key: { kty: 'RSA', n: modulus.toString('base64url'), e: e.subarray(e.findIndex((b) => b !== 0)).toString('base64url') },
    format: 'jwk',
  });
}

function eccKeyObject(curve: CurveInfo, x: Buffer, y: Buffer): KeyObject {
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: curve.jwk, x: leftPad(x, curve.size).toString('base64url'), y: leftPad(y, curve.size).toString('base64url') },
      format: 'jwk',
    });
  } catch (error) {
    if (error instanceof KeyConversionError) {
      throw error;
    }
    throw new KeyConversionError(`ECC point is not on ${curve.jwk}`);
  }
}

/** The `unique` field for a key: the RSA modulus, or the ECC point with full-length coordinates. */
export function uniqueFromKey(key: KeyObject): { type: 'rsa'; modulus: Buffer; exponent: number; keyBits: number } | { type: 'ecc'; curveID: number; x: Buffer; y: Buffer } {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'RSA') {
    const modulus = Buffer.from(jwk.n!, 'base64url');
    const e = Buffer.from(jwk.e!, 'base64url');
    const exponent = e.reduce((acc, byte) => acc * 256 + byte, 0);
    return { type: 'rsa', modulus, exponent: exponent === 65537 ? 0 : exponent, keyBits: modulus.length * 8 };
  }
  if (jwk.kty === 'EC') {
    const curve = curveByJwk(jwk.crv);
    return { type: 'ecc', curveID: curve.curveID, x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') };
  }
  throw new KeyConversionError(`unsupported key type ${String(jwk.kty)}`);
}

/**
 * A TPMT_PUBLIC for `key`, taking everything but `unique` (and RSA exponent/keyBits) from
 * `template`: how a PEM EK public key becomes the EK's public area when the TPM's own is not at hand.
 */
export function tpmtPublicFromKey<T extends RsaPublic | EccPublic>(key: KeyObject, template: T): T {
  const unique = uniqueFromKey(key);
  if (template.type === TPM_ALG_ID.TPM_ALG_RSA && unique.type === 'rsa') {
    return { ...template, parameters: { ...template.parameters, keyBits: unique.keyBits, exponent: unique.exponent }, unique: unique.modulus };
  }
  if (template.type === TPM_ALG_ID.TPM_ALG_ECC && unique.type === 'ecc') {
    if (template.parameters.curveID !== unique.curveID) {
      throw new KeyConversionError(`key is on curve 0x${unique.curveID.toString(16)}, template expects 0x${template.parameters.curveID.toString(16)}`);
    }
    return { ...template, unique: { x: unique.x, y: unique.y } };
  }
  throw new KeyConversionError(`a ${unique.type.toUpperCase()} key does not fit a ${algName(template.type)} template`);
}

/**
 * ekPubHash of KeyObjects already hashed: with publicKeyFromTpmt's cache, a wrap to an EK (whose
 * envelope names it by ekPubHash) skips the SPKI export and its digest. Weak: an entry lives as long
 * as its KeyObject, and a KeyObject is immutable.
 */
const EK_PUB_HASHES = new WeakMap<KeyObject, string>();

/**
 * rackseal's EK identity: lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo, the
 * same whether computed from the EK certificate, a PEM key or the TPM's TPMT_PUBLIC.
 */
export function ekPubHash(source: KeyObject | X509Certificate | TPMT_PUBLIC): string {
  let key: KeyObject;
  if (source instanceof X509Certificate) {
    key = source.publicKey;
  } else if ('type' in source && typeof source.type === 'number') {
    key = publicKeyFromTpmt(source);
  } else {
    key = source as KeyObject;
  }
  const known = EK_PUB_HASHES.get(key);
  if (known !== undefined) {
    return known;
  }
  let spkiKey = key;
  if (key.asymmetricKeyType === 'ec') {
    // OpenSSL re-exports a compressed EC point compressed; a TPM's TPMT_PUBLIC yields an
    // uncompressed one. A JWK round trip makes every form of the same key hash alike.
    spkiKey = createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' });
  }
  const hash = createHash('sha256').update(spkiKey.export({ type: 'spki', format: 'der' })).digest('hex');
  EK_PUB_HASHES.set(key, hash);
  return hash;
}
