import { constants, type KeyObject, verify } from 'node:crypto';
import type { AlgorithmIdentifier, ParsedCertificate } from './certificate';
import { contextTag, DerCursor, DerError, decodeOid, decodeSmallInteger, readTlv, TAG } from './der';
import { OID } from './oids';

/** How to check one signature with node:crypto (OpenSSL). */
type SignatureScheme =
  | { readonly kind: 'rsa-pkcs1'; readonly hash: string }
  | { readonly kind: 'rsa-pss'; readonly hash: string; readonly saltLength: number }
  | { readonly kind: 'ecdsa'; readonly hash: string };

const SIMPLE_SCHEMES: Readonly<Record<string, SignatureScheme>> = {
  [OID.sha1WithRsa]: { kind: 'rsa-pkcs1', hash: 'sha1' },
  [OID.sha224WithRsa]: { kind: 'rsa-pkcs1', hash: 'sha224' },
  [OID.sha256WithRsa]: { kind: 'rsa-pkcs1', hash: 'sha256' },
  [OID.sha384WithRsa]: { kind: 'rsa-pkcs1', hash: 'sha384' },
  [OID.sha512WithRsa]: { kind: 'rsa-pkcs1', hash: 'sha512' },
  [OID.ecdsaWithSha1]: { kind: 'ecdsa', hash: 'sha1' },
  [OID.ecdsaWithSha224]: { kind: 'ecdsa', hash: 'sha224' },
  [OID.ecdsaWithSha256]: { kind: 'ecdsa', hash: 'sha256' },
  [OID.ecdsaWithSha384]: { kind: 'ecdsa', hash: 'sha384' },
  [OID.ecdsaWithSha512]: { kind: 'ecdsa', hash: 'sha512' },
};

const HASHES: Readonly<Record<string, string>> = {
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

export class UnsupportedSignatureAlgorithmError extends Error {
  constructor(readonly oid: string, detail = '') {
    super(`unsupported signature algorithm ${oid}${detail === '' ? '' : ` (${detail})`}`);
    this.name = 'UnsupportedSignatureAlgorithmError';
  }
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): hash [0] default SHA-1, mask generation [1] default MGF1 with
 * SHA-1, salt length [2] default 20, trailer field [3] must be 1. OpenSSL uses the signature hash for
 * MGF1, so a different MGF1 hash is refused as unsupported.
 */
function pssScheme(algorithm: AlgorithmIdentifier): SignatureScheme {
  const params = algorithm.parameters;
  let hash = 'sha1';
  let mgfHash = 'sha1';
  let saltLength = 20;
  if (params !== undefined && params.tag === TAG.SEQUENCE) {
    const base = params.raw;
    const c = DerCursor.over(base, readTlv(base, 0, 'RSASSA-PSS-params'), 'RSASSA-PSS-params');
    const hashTlv = c.optional('hashAlgorithm', contextTag(0, true));
    if (hashTlv !== undefined) {
      hash = hashName(DerCursor.over(base, hashTlv, 'hashAlgorithm').enter('AlgorithmIdentifier', TAG.SEQUENCE), algorithm.oid);
    }
    const mgfTlv = c.optional('maskGenAlgorithm', contextTag(1, true));
    if (mgfTlv !== undefined) {
      const mgf = DerCursor.over(base, mgfTlv, 'maskGenAlgorithm').enter('AlgorithmIdentifier', TAG.SEQUENCE);
      const mgfOid = decodeOid(mgf.next('algorithm', TAG.OID), 'maskGenAlgorithm');
      if (mgfOid !== OID.mgf1) {
        throw new UnsupportedSignatureAlgorithmError(algorithm.oid, `mask generation ${mgfOid}`);
      }
      mgfHash = hashName(mgf.enter('parameters', TAG.SEQUENCE), algorithm.oid);
    }
    const saltTlv = c.optional('saltLength', contextTag(2, true));
    if (saltTlv !== undefined) {
      saltLength = decodeSmallInteger(DerCursor.over(base, saltTlv, 'saltLength').next('INTEGER', TAG.INTEGER), 'saltLength');
    }
    const trailerTlv = c.optional('trailerField', contextTag(3, true));
    if (trailerTlv !== undefined && decodeSmallInteger(DerCursor.over(base, trailerTlv, 'trailerField').next('INTEGER', TAG.INTEGER), 'trailerField') !== 1) {
      throw new UnsupportedSignatureAlgorithmError(algorithm.oid, 'trailer field other than 1');
    }
  }
  if (mgfHash !== hash) {
    throw new UnsupportedSignatureAlgorithmError(algorithm.oid, `MGF1 with ${mgfHash} and ${hash} digests`);
  }
  return { kind: 'rsa-pss', hash, saltLength };
}

function hashName(cursor: DerCursor, signatureOid: string): string {
  const oid = decodeOid(cursor.next('algorithm', TAG.OID), 'hashAlgorithm');
  const name = HASHES[oid];
  if (name === undefined) {
    throw new UnsupportedSignatureAlgorithmError(signatureOid, `hash ${oid}`);
  }
  return name;
}

function schemeFor(algorithm: AlgorithmIdentifier): SignatureScheme {
  const simple = SIMPLE_SCHEMES[algorithm.oid];
  if (simple !== undefined) {
    return simple;
  }
  if (algorithm.oid === OID.rsassaPss) {
    try {
      return pssScheme(algorithm);
    } catch (error) {
      if (error instanceof DerError) {
        throw new UnsupportedSignatureAlgorithmError(algorithm.oid, `malformed parameters: ${error.message}`);
      }
      throw error;
    }
  }
  throw new UnsupportedSignatureAlgorithmError(algorithm.oid);
}

/**
 * Whether `issuerKey` signed `cert`: the signature over the tbsCertificate bytes exactly as found
 * (never a re-encoding, so quirky serials and unsorted SETs verify as their issuer signed them).
 * A key of the wrong type is simply `false`; an algorithm we cannot check throws
 * UnsupportedSignatureAlgorithmError.
 */
export function isSignedBy(cert: ParsedCertificate, issuerKey: KeyObject): boolean {
  const scheme = schemeFor(cert.signatureAlgorithm);
  const keyType = issuerKey.asymmetricKeyType;
  try {
    switch (scheme.kind) {
      case 'rsa-pkcs1':
        return keyType === 'rsa' && verify(scheme.hash, cert.tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PADDING }, cert.signature);
      case 'rsa-pss':
        return (
          (keyType === 'rsa' || keyType === 'rsa-pss') &&
          verify(scheme.hash, cert.tbs, { key: issuerKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength }, cert.signature)
        );
      case 'ecdsa':
        return keyType === 'ec' && verify(scheme.hash, cert.tbs, { key: issuerKey, dsaEncoding: 'der' }, cert.signature);
    }
  } catch {
    // OpenSSL throws on some malformed signatures (e.g. an ECDSA value that is not a DER SEQUENCE).
    return false;
  }
}
