import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import {
  contextTag,
  decodeBitString,
  decodeBoolean,
  decodeInteger,
  decodeOid,
  decodeSmallInteger,
  decodeString,
  decodeTime,
  DerCursor,
  DerError,
  encodeTlv,
  readTlv,
  TAG,
  type Tlv,
} from './der';
import { EkCertificateError, type EkQuirk } from './errors';
import { parseName, type X509Name } from './names';
import { KNOWN_EXTENSIONS, OID } from './oids';

/** AlgorithmIdentifier (RFC 5280 §4.1.1.2): the OID and the parameters' TLV, if any. */
export interface AlgorithmIdentifier {
  readonly oid: string;
  readonly parameters: Tlv | undefined;
}

export interface X509Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue OCTET STRING's content: the extension's own DER. */
  readonly value: Buffer;
}

/** KeyUsage bit names in bit order (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

/** TPM specification a TPM claims in subjectDirectoryAttributes (TCG EK Credential Profile §3.2.12). */
export interface TpmSpecification {
  readonly family: string;
  readonly level: number;
  readonly revision: number;
}

/**
 * A certificate as found: every field rackseal uses, decoded from the original bytes, which are kept
 * (`der`, `tbs`) so that signatures are checked over exactly what the issuer signed.
 */
export interface ParsedCertificate {
  /** The certificate's DER TLV, exactly as encoded (after an NV header / padding was removed). */
  readonly der: Buffer;
  /** Lowercase hex SHA-256 of `der`. */
  readonly fingerprint: string;
  /** The tbsCertificate TLV as encoded: what the signature covers. */
  readonly tbs: Buffer;
  /** 1, 2 or 3. */
  readonly version: number;
  /** Lowercase hex of the serial's content octets as encoded (two's complement, leading octets kept). */
  readonly serialNumber: string;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  /** The signature BIT STRING's bits. */
  readonly signature: Buffer;
  readonly issuer: X509Name;
  readonly subject: X509Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo TLV as encoded. */
  readonly spki: Buffer;
  /** What the SPKI holds, read from its DER (cheap: no OpenSSL key object). */
  readonly publicKeyInfo: PublicKeyInfo;
  /**
   * The key as a node:crypto KeyObject, made on first use (OpenSSL 3 takes ~0.1 ms to decode a key,
   * more than the rest of the parse; a bulk import only needs the issuers' keys). Throws
   * EkCertificateError('unsupported-key') when OpenSSL cannot read it.
   */
  readonly publicKey: KeyObject;
  readonly extensions: readonly X509Extension[];
  /** Present when the certificate has a basicConstraints extension. */
  readonly basicConstraints: { readonly ca: boolean; readonly pathLength: number | undefined } | undefined;
  /** Present when the certificate has a keyUsage extension. */
  readonly keyUsage: ReadonlySet<KeyUsage> | undefined;
  readonly subjectKeyId: string | undefined;
  readonly authorityKeyId: string | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
  /** directoryName entries of the subjectAltName (where TCG puts manufacturer/model/version). */
  readonly sanDirectoryNames: readonly X509Name[];
  readonly tpmSpecification: TpmSpecification | undefined;
  /** Critical extensions this library does not understand: such a certificate cannot be in a chain. */
  readonly unhandledCriticalExtensions: readonly string[];
  /** Deviations from strict DER/X.509 found inside the certificate. */
  readonly quirks: readonly EkQuirk[];
}

/** Named curves by OID (RFC 5480 §2.1.1.1) with their size in bits and point coordinate length. */
const NAMED_CURVES: Readonly<Record<string, { readonly curve: 'P-256' | 'P-384' | 'P-521'; readonly bits: number; readonly coordinate: number }>> = {
  '1.2.840.10045.3.1.7': { curve: 'P-256', bits: 256, coordinate: 32 },
  '1.3.132.0.34': { curve: 'P-384', bits: 384, coordinate: 48 },
  '1.3.132.0.35': { curve: 'P-521', bits: 521, coordinate: 66 },
};

/** A subject public key as the SPKI DER describes it. */
export type PublicKeyInfo =
  | { readonly type: 'rsa'; readonly bits: number; readonly canonical: boolean }
  | { readonly type: 'ecc'; readonly curve: 'P-256' | 'P-384' | 'P-521'; readonly bits: number; readonly canonical: boolean }
  | { readonly type: 'other'; readonly algorithm: string; readonly canonical: false };

/** A CA: basicConstraints cA = TRUE (RFC 5280 §4.2.1.9). */
export function isCa(cert: ParsedCertificate): boolean {
  return cert.basicConstraints?.ca === true;
}

function malformed(error: unknown): never {
  if (error instanceof DerError) {
    throw new EkCertificateError('malformed', `not an X.509 certificate: ${error.message}`);
  }
  throw error;
}

/** Parses one certificate. `der` must be exactly one TLV: unwrap NV headers and padding first (input.ts). */
export function parseCertificate(der: Buffer): ParsedCertificate {
  try {
    return parseCertificateDer(der);
  } catch (error) {
    return malformed(error);
  }
}

function parseAlgorithm(base: Buffer, tlv: Tlv, field: string): AlgorithmIdentifier {
  const cursor = DerCursor.over(base, tlv, field);
  const oid = decodeOid(cursor.next('algorithm', TAG.OID), `${field}.algorithm`);
  const parameters = cursor.done ? undefined : cursor.next('parameters');
  cursor.end();
  return { oid, parameters };
}

function parseCertificateDer(der: Buffer): ParsedCertificate {
  const outer = readTlv(der, 0, 'Certificate');
  if (outer.tag !== TAG.SEQUENCE) {
    throw new DerError('Certificate', 0, 'not a SEQUENCE');
  }
  if (outer.end !== der.length) {
    throw new DerError('Certificate', outer.end, `${der.length - outer.end} bytes after the certificate`);
  }
  const quirks = new Set<EkQuirk>();
  const certificate = DerCursor.over(der, outer, 'Certificate');
  const tbsTlv = certificate.next('tbsCertificate', TAG.SEQUENCE);
  const signatureAlgorithm = parseAlgorithm(der, certificate.next('signatureAlgorithm', TAG.SEQUENCE), 'Certificate.signatureAlgorithm');
  const signature = decodeBitString(certificate.next('signatureValue', TAG.BIT_STRING), 'Certificate.signatureValue').bytes;
  certificate.end();

  const tbs = DerCursor.over(der, tbsTlv, 'TBSCertificate', certificate.flags);
  const versionTlv = tbs.optional('version', contextTag(0, true));
  let version = 1;
  if (versionTlv !== undefined) {
    const inner = DerCursor.over(der, versionTlv, 'TBSCertificate.version');
    version = decodeSmallInteger(inner.next('Version', TAG.INTEGER), 'TBSCertificate.version') + 1;
    inner.end();
    if (version > 3) {
      throw new DerError('TBSCertificate.version', versionTlv.start, `unknown version v${version}`);
    }
  }
  const serialTlv = tbs.next('serialNumber', TAG.INTEGER);
  const serial = decodeInteger(serialTlv, 'TBSCertificate.serialNumber');
  if (serial.nonMinimal) {
    quirks.add('non-minimal-serial');
  }
  if (serial.negative) {
    quirks.add('negative-serial');
  }
  if (serial.bytes.length > 20) {
    quirks.add('long-serial');
  }
  const tbsAlgorithm = parseAlgorithm(der, tbs.next('signature', TAG.SEQUENCE), 'TBSCertificate.signature');
  if (tbsAlgorithm.oid !== signatureAlgorithm.oid) {
    throw new DerError('TBSCertificate.signature', tbsTlv.start, `${tbsAlgorithm.oid} differs from the outer signatureAlgorithm ${signatureAlgorithm.oid}`);
  }
  const issuer = parseName(der, tbs.next('issuer', TAG.SEQUENCE), 'TBSCertificate.issuer', certificate.flags);
  const validity = tbs.enter('validity', TAG.SEQUENCE);
  const notBefore = decodeTime(validity.next('notBefore'), 'TBSCertificate.validity.notBefore');
  const notAfter = decodeTime(validity.next('notAfter'), 'TBSCertificate.validity.notAfter');
  validity.end();
  const subject = parseName(der, tbs.next('subject', TAG.SEQUENCE), 'TBSCertificate.subject', certificate.flags);
  if (issuer.unsortedSet || subject.unsortedSet) {
    quirks.add('unsorted-set');
  }
  const spkiTlv = tbs.next('subjectPublicKeyInfo', TAG.SEQUENCE);
  tbs.optional('issuerUniqueID', contextTag(1, false));
  tbs.optional('subjectUniqueID', contextTag(2, false));
  const extensionsTlv = tbs.optional('extensions', contextTag(3, true));
  tbs.end();

  const extensions: X509Extension[] = [];
  if (extensionsTlv !== undefined) {
    const wrapper = DerCursor.over(der, extensionsTlv, 'TBSCertificate.extensions', certificate.flags);
    const list = wrapper.enter('Extensions', TAG.SEQUENCE);
    wrapper.end();
    while (!list.done) {
      const ext = list.enter(`extension[${extensions.length}]`, TAG.SEQUENCE);
      const oid = decodeOid(ext.next('extnID', TAG.OID), 'Extension.extnID');
      const criticalTlv = ext.optional('critical', TAG.BOOLEAN);
      const value = ext.next('extnValue', TAG.OCTET_STRING);
      ext.end();
      if (extensions.some((e) => e.oid === oid)) {
        throw new DerError('TBSCertificate.extensions', value.start, `extension ${oid} appears twice`);
      }
      extensions.push({ oid, critical: criticalTlv !== undefined && decodeBoolean(criticalTlv, 'Extension.critical'), value: value.content });
    }
  }

  const { info: publicKeyInfo, keyDer } = readPublicKeyInfo(der, spkiTlv, quirks);
  const decoded = decodeExtensions(extensions, quirks);
  if (certificate.flags.nonMinimalLength) {
    quirks.add('ber-length');
  }
  let publicKey: KeyObject | undefined;
  return {
    der,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    tbs: tbsTlv.raw,
    version,
    serialNumber: serial.bytes.toString('hex'),
    signatureAlgorithm,
    signature,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: spkiTlv.raw,
    publicKeyInfo,
    get publicKey(): KeyObject {
      publicKey ??= decodePublicKey(keyDer, publicKeyInfo);
      return publicKey;
    },
    extensions,
    ...decoded,
    unhandledCriticalExtensions: extensions.filter((e) => e.critical && !KNOWN_EXTENSIONS.has(e.oid)).map((e) => e.oid),
    quirks: [...quirks],
  };
}

const RSA_ALGORITHM_DER = '300d06092a864886f70d0101010500';
const EC_ALGORITHM_PREFIX = '06072a8648ce3d0201';

/**
 * Reads the SPKI's algorithm and key size from its DER, and whether the SPKI is already in the
 * canonical form OpenSSL exports (rsaEncryption with NULL parameters and minimal integers; a named
 * curve with an uncompressed point): then its SHA-256 is the ekPubHash without decoding the key.
 */
function readPublicKeyInfo(der: Buffer, spkiTlv: Tlv, quirks: Set<EkQuirk>): { info: PublicKeyInfo; keyDer: Buffer } {
  const flags = { nonMinimalLength: false };
  const cursor = DerCursor.over(der, spkiTlv, 'SubjectPublicKeyInfo', flags);
  const algorithmTlv = cursor.next('algorithm', TAG.SEQUENCE);
  const algorithm = parseAlgorithm(der, algorithmTlv, 'SubjectPublicKeyInfo.algorithm');
  const keyBitsTlv = cursor.next('subjectPublicKey', TAG.BIT_STRING);
  cursor.end();
  const keyBits = decodeBitString(keyBitsTlv, 'SubjectPublicKeyInfo.subjectPublicKey');
  if (algorithm.oid === OID.rsaEncryption || algorithm.oid === OID.rsaesOaep) {
    const rsaKey = readTlv(keyBits.bytes, 0, 'RSAPublicKey');
    const rsa = DerCursor.over(keyBits.bytes, rsaKey, 'RSAPublicKey', flags);
    const modulus = decodeInteger(rsa.next('modulus', TAG.INTEGER), 'RSAPublicKey.modulus');
    const exponent = decodeInteger(rsa.next('publicExponent', TAG.INTEGER), 'RSAPublicKey.publicExponent');
    rsa.end();
    if (modulus.negative || exponent.negative || rsaKey.end !== keyBits.bytes.length) {
      throw new DerError('RSAPublicKey', spkiTlv.start, 'not a valid RSA public key');
    }
    const significant = modulus.bytes.subarray(modulus.bytes.findIndex((b) => b !== 0));
    const bits = significant.length === 0 ? 0 : (significant.length - 1) * 8 + (32 - Math.clz32(significant[0]!));
    let keyDer = spkiTlv.raw;
    let canonical = algorithmTlv.raw.toString('hex') === RSA_ALGORITHM_DER && !modulus.nonMinimal && !exponent.nonMinimal && keyBits.unusedBits === 0;
    if (algorithm.oid === OID.rsaesOaep) {
      // TPM 1.2 EK certificates label the RSA key id-RSAES-OAEP (RFC 4055 §1.2); OpenSSL reads only
      // rsaEncryption. The key bits are the same RSAPublicKey, so relabel them to read the key.
      quirks.add('rsaes-oaep-key');
      keyDer = encodeTlv(TAG.SEQUENCE, Buffer.concat([Buffer.from(RSA_ALGORITHM_DER, 'hex'), keyBitsTlv.raw]));
      canonical = false;
    }
    return { info: { type: 'rsa', bits, canonical: canonical && !flags.nonMinimalLength }, keyDer };
  }
  if (algorithm.oid === OID.ecPublicKey && algorithm.parameters?.tag === TAG.OID) {
    const curve = NAMED_CURVES[decodeOid(algorithm.parameters, 'ECParameters.namedCurve')];
    if (curve !== undefined) {
      const point = keyBits.bytes;
      const uncompressed = point[0] === 0x04 && point.length === 1 + 2 * curve.coordinate;
      const compressed = (point[0] === 0x02 || point[0] === 0x03) && point.length === 1 + curve.coordinate;
      if (!uncompressed && !compressed) {
        throw new DerError('SubjectPublicKeyInfo.subjectPublicKey', keyBitsTlv.start, `not a ${curve.curve} point`);
      }
      const canonical = uncompressed && algorithmTlv.raw.toString('hex') === `30${(algorithmTlv.content.length).toString(16).padStart(2, '0')}${EC_ALGORITHM_PREFIX}${algorithm.parameters.raw.toString('hex')}`;
      return { info: { type: 'ecc', curve: curve.curve, bits: curve.bits, canonical: canonical && !flags.nonMinimalLength && keyBits.unusedBits === 0 }, keyDer: spkiTlv.raw };
    }
  }
  return { info: { type: 'other', algorithm: algorithm.oid, canonical: false }, keyDer: spkiTlv.raw };
}

function decodePublicKey(keyDer: Buffer, info: PublicKeyInfo): KeyObject {
  try {
    return createPublicKey({ key: keyDer, format: 'der', type: 'spki' });
  } catch (error) {
    const what = info.type === 'other' ? info.algorithm : info.type;
    throw new EkCertificateError('unsupported-key', `unreadable subject public key (${what}): ${(error as Error).message}`);
  }
}

type DecodedExtensions = Pick<
  ParsedCertificate,
  'basicConstraints' | 'keyUsage' | 'subjectKeyId' | 'authorityKeyId' | 'extKeyUsage' | 'sanDirectoryNames' | 'tpmSpecification'
>;

/**
 * Decodes the extensions rackseal uses. basicConstraints and keyUsage decide what a key may sign,
 * so a malformed one fails the whole certificate; any other malformed extension does so only when
 * critical, and is otherwise treated as absent.
 */
function decodeExtensions(extensions: readonly X509Extension[], quirks: Set<EkQuirk>): DecodedExtensions {
  const out: {
    -readonly [K in keyof DecodedExtensions]: DecodedExtensions[K];
  } = {
    basicConstraints: undefined,
    keyUsage: undefined,
    subjectKeyId: undefined,
    authorityKeyId: undefined,
    extKeyUsage: undefined,
    sanDirectoryNames: [],
    tpmSpecification: undefined,
  };
  for (const extension of extensions) {
    const value = extension.value;
    const tlv = (): Tlv => {
      const t = readTlv(value, 0, extension.oid);
      if (t.end !== value.length) {
        throw new DerError(extension.oid, t.end, 'trailing bytes in extension value');
      }
      return t;
    };
    const decode = (mandatory: boolean, fn: () => void): void => {
      try {
        fn();
      } catch (error) {
        if (mandatory || extension.critical) {
          throw error;
        }
      }
    };
    switch (extension.oid) {
      case OID.basicConstraints:
        decode(true, () => {
          const c = DerCursor.over(value, tlv(), 'BasicConstraints');
          const caTlv = c.optional('cA', TAG.BOOLEAN);
          const pathTlv = c.optional('pathLenConstraint', TAG.INTEGER);
          c.end();
          out.basicConstraints = {
            ca: caTlv !== undefined && decodeBoolean(caTlv, 'BasicConstraints.cA'),
            pathLength: pathTlv === undefined ? undefined : decodeSmallInteger(pathTlv, 'BasicConstraints.pathLenConstraint'),
          };
        });
        break;
      case OID.keyUsage:
        decode(true, () => {
          const { bytes } = decodeBitString(tlv(), 'KeyUsage');
          out.keyUsage = new Set(KEY_USAGE_BITS.filter((_, bit) => ((bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0));
        });
        break;
      case OID.subjectKeyIdentifier:
        decode(false, () => {
          const t = tlv();
          if (t.tag !== TAG.OCTET_STRING) {
            throw new DerError('SubjectKeyIdentifier', 0, 'not an OCTET STRING');
          }
          out.subjectKeyId = t.content.toString('hex');
        });
        break;
      case OID.authorityKeyIdentifier:
        decode(false, () => {
          const c = DerCursor.over(value, tlv(), 'AuthorityKeyIdentifier');
          // Only the key identifier is used. authorityCertIssuer/SerialNumber are ignored on purpose:
          // Infineon's older intermediates name the wrong serial there, and OpenSSL then fails them.
          out.authorityKeyId = c.optional('keyIdentifier', contextTag(0, false))?.content.toString('hex');
        });
        break;
      case OID.extKeyUsage:
        decode(false, () => {
          const c = DerCursor.over(value, tlv(), 'ExtKeyUsage');
          out.extKeyUsage = c.rest('KeyPurposeId').map((t) => decodeOid(t, 'ExtKeyUsage.KeyPurposeId'));
        });
        break;
      case OID.subjectAltName:
        decode(false, () => {
          const c = DerCursor.over(value, tlv(), 'GeneralNames');
          const names = c.rest('GeneralName');
          const directoryNames: X509Name[] = [];
          for (const name of names) {
            if (name.tag === contextTag(4, true)) {
              // directoryName [4] EXPLICIT Name
              const inner = DerCursor.over(value, name, 'GeneralName.directoryName');
              directoryNames.push(parseName(value, inner.next('Name', TAG.SEQUENCE), 'GeneralName.directoryName'));
              inner.end();
            }
          }
          out.sanDirectoryNames = directoryNames;
          if (extension.critical && names.length > 0 && directoryNames.length === names.length) {
            quirks.add('critical-san-directory-name');
          }
        });
        break;
      case OID.subjectDirectoryAttributes:
        decode(false, () => {
          const c = DerCursor.over(value, tlv(), 'SubjectDirectoryAttributes');
          while (!c.done) {
            const attribute = c.enter('Attribute', TAG.SEQUENCE);
            const type = decodeOid(attribute.next('type', TAG.OID), 'Attribute.type');
            const values = attribute.enter('values', TAG.SET);
            if (type === OID.tpmSpecification && !values.done) {
              const spec = values.enter('TPMSpecification', TAG.SEQUENCE);
              const family = decodeString(spec.next('family'));
              const level = decodeSmallInteger(spec.next('level', TAG.INTEGER), 'TPMSpecification.level');
              const revision = decodeSmallInteger(spec.next('revision', TAG.INTEGER), 'TPMSpecification.revision');
              if (family !== undefined) {
                out.tpmSpecification = { family, level, revision };
              }
            }
          }
        });
        break;
      default:
        break;
    }
  }
  return out;
}
