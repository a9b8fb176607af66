/**
 * Builds X.509 certificates byte by byte, for tests and benchmarks: chosen validity, serial octets
 * (non-minimal, negative), name SET order, critical flags, TCG EK extensions — the quirks real EK
 * certificates have and that certificate libraries refuse to produce. Signed with node:crypto over
 * exactly the tbsCertificate built here. Not exported from the library's index: production code
 * never issues certificates.
 */
import { createHash, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { contextTag, encodeTlv, TAG } from '../der';
import { OID } from '../oids';

const LABEL_OIDS: Readonly<Record<string, string>> = {
  CN: '2.5.4.3',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  tpmManufacturer: OID.tpmManufacturer,
  tpmModel: OID.tpmModel,
  tpmVersion: OID.tpmVersion,
};

/** One attribute: [label or dotted OID, value, optional string tag (default UTF8String; C uses PrintableString)]. */
export type AttributeSpec = readonly [string, string, number?];
/** RDNs in order; an RDN with several attributes is multi-valued, encoded in the order given (unsorted if you like). */
export type NameSpec = readonly (readonly AttributeSpec[])[];

export function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const [first = 0, second = 0, ...rest] = arcs;
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const septets: number[] = [];
    let value = arc;
    do {
      septets.unshift(value & 0x7f);
      value = Math.floor(value / 128);
    } while (value > 0);
    out.push(...septets.map((s, i) => (i < septets.length - 1 ? s | 0x80 : s)));
  }
  return encodeTlv(TAG.OID, Buffer.from(out));
}

export function seq(...parts: Buffer[]): Buffer {
  return encodeTlv(TAG.SEQUENCE, Buffer.concat(parts));
}

/** Encodes a Name; multi-valued RDN attributes keep the given order (DER would sort them). */
export function encodeName(spec: NameSpec): Buffer {
  return seq(
    ...spec.map((rdn) =>
      encodeTlv(
        TAG.SET,
        Buffer.concat(
          rdn.map(([label, value, tag]) =>
            seq(encodeOid(LABEL_OIDS[label] ?? label), encodeTlv(tag ?? (label === 'C' ? TAG.PRINTABLE_STRING : TAG.UTF8_STRING), Buffer.from(value, 'utf8'))),
          ),
        ),
      ),
    ),
  );
}

function encodeTime(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = date.getUTCFullYear();
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return year >= 1950 && year < 2050 ? encodeTlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'latin1')) : encodeTlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

export interface ExtensionSpec {
  readonly oid: string;
  readonly critical?: boolean;
  /** The extension's DER (wrapped in the extnValue OCTET STRING here). */
  readonly value: Buffer;
}

function encodeExtension(e: ExtensionSpec): Buffer {
  return seq(encodeOid(e.oid), ...(e.critical === true ? [Buffer.from([TAG.BOOLEAN, 1, 0xff])] : []), encodeTlv(TAG.OCTET_STRING, e.value));
}

export function basicConstraints(ca: boolean, pathLength?: number): ExtensionSpec {
  const parts = [...(ca ? [Buffer.from([TAG.BOOLEAN, 1, 0xff])] : []), ...(pathLength === undefined ? [] : [encodeTlv(TAG.INTEGER, Buffer.from([pathLength]))])];
  return { oid: OID.basicConstraints, critical: true, value: seq(...parts) };
}

/** keyUsage with the given bit numbers set (5 = keyCertSign, 2 = keyEncipherment, 4 = keyAgreement). */
export function keyUsage(...bits: number[]): ExtensionSpec {
  const bytes = [0, 0];
  for (const bit of bits) {
    bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  }
  const used = bytes[1] === 0 ? [bytes[0]!] : bytes;
  return { oid: OID.keyUsage, critical: true, value: encodeTlv(TAG.BIT_STRING, Buffer.from([0, ...used])) };
}

export function subjectKeyId(id: Buffer): ExtensionSpec {
  return { oid: OID.subjectKeyIdentifier, value: encodeTlv(TAG.OCTET_STRING, id) };
}

export function authorityKeyId(id: Buffer): ExtensionSpec {
  return { oid: OID.authorityKeyIdentifier, value: seq(encodeTlv(contextTag(0, false), id)) };
}

/** TCG EK SAN: a directoryName with manufacturer/model/version (TCG EK Credential Profile §3.2.9). */
export function tcgSubjectAltName(attributes: { manufacturer: string; model: string; version: string }, critical = true): ExtensionSpec {
  const name = encodeName([[['tpmManufacturer', attributes.manufacturer]], [['tpmModel', attributes.model]], [['tpmVersion', attributes.version]]]);
  return { oid: OID.subjectAltName, critical, value: seq(encodeTlv(contextTag(4, true), name)) };
}

export function ekCertificateEku(): ExtensionSpec {
  return { oid: OID.extKeyUsage, value: seq(encodeOid(OID.tcgKpEkCertificate)) };
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
export function keyIdFor(key: KeyObject): Buffer {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spki).digest();
}

export interface CertificateSpec {
  readonly subject: NameSpec | Buffer;
  /** Default: the issuer certificate's subject, or `subject` for a self-signed certificate. */
  readonly issuer?: NameSpec | Buffer;
  /** Serial content octets as encoded (so they may be non-minimal or negative), or a small number. */
  readonly serial?: Buffer | number;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The certified key (public or private). */
  readonly publicKey: KeyObject;
  /** The issuer's private key; the certificate's own key for a self-signed one. */
  readonly signingKey: KeyObject;
  readonly extensions?: readonly ExtensionSpec[];
  /** Digest for the signature; default sha256. */
  readonly hash?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
}

const RSA_SIGNATURES = { sha1: OID.sha1WithRsa, sha256: OID.sha256WithRsa, sha384: OID.sha384WithRsa, sha512: OID.sha512WithRsa } as const;
const ECDSA_SIGNATURES = { sha1: OID.ecdsaWithSha1, sha256: OID.ecdsaWithSha256, sha384: OID.ecdsaWithSha384, sha512: OID.ecdsaWithSha512 } as const;

function signatureAlgorithm(key: KeyObject, hash: keyof typeof RSA_SIGNATURES): Buffer {
  if (key.asymmetricKeyType === 'rsa') {
    return seq(encodeOid(RSA_SIGNATURES[hash]), Buffer.from([TAG.NULL, 0]));
  }
  if (key.asymmetricKeyType === 'ec') {
    return seq(encodeOid(ECDSA_SIGNATURES[hash]));
  }
  throw new Error(`cannot sign with a ${String(key.asymmetricKeyType)} key`);
}

/** Assembles and signs the tbsCertificate; returns the parts so tests can also tamper with them. */
export function buildTbs(spec: CertificateSpec): { tbs: Buffer; algorithm: Buffer } {
  const hash = spec.hash ?? 'sha256';
  const algorithm = signatureAlgorithm(spec.signingKey, hash);
  const serial = typeof spec.serial === 'number' || spec.serial === undefined ? Buffer.from([spec.serial ?? 1]) : spec.serial;
  const subject = Buffer.isBuffer(spec.subject) ? spec.subject : encodeName(spec.subject);
  const issuer = spec.issuer === undefined ? subject : Buffer.isBuffer(spec.issuer) ? spec.issuer : encodeName(spec.issuer);
  const publicKey = spec.publicKey.type === 'private' ? createPublicKey(spec.publicKey) : spec.publicKey;
  const extensions = spec.extensions ?? [];
  const tbs = seq(
    encodeTlv(contextTag(0, true), encodeTlv(TAG.INTEGER, Buffer.from([2]))),
    encodeTlv(TAG.INTEGER, serial),
    algorithm,
    issuer,
    seq(encodeTime(spec.notBefore), encodeTime(spec.notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    ...(extensions.length === 0 ? [] : [encodeTlv(contextTag(3, true), seq(...extensions.map(encodeExtension)))]),
  );
  return { tbs, algorithm };
}

/** Signs `tbs` (any bytes) with `key` and wraps it into a Certificate. */
export function signTbs(tbs: Buffer, algorithm: Buffer, key: KeyObject, hash: CertificateSpec['hash'] = 'sha256'): Buffer {
  const signature = sign(hash, tbs, key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'der' } : key);
  return seq(tbs, algorithm, encodeTlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([0]), signature])));
}

export function issueCertificate(spec: CertificateSpec): Buffer {
  const { tbs, algorithm } = buildTbs(spec);
  return signTbs(tbs, algorithm, spec.signingKey, spec.hash);
}

/** A CA made here: its DER, subject, and keys. */
export interface TestCa {
  readonly der: Buffer;
  readonly subject: NameSpec;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface CaSpec {
  readonly subject: NameSpec;
  readonly keys: { privateKey: KeyObject; publicKey: KeyObject };
  /** Issuing CA; omitted for a self-signed root. */
  readonly issuer?: TestCa;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly pathLength?: number;
  readonly serial?: number;
}

/** A CA certificate: basicConstraints cA (critical), keyUsage keyCertSign + cRLSign, SKI, AKI. */
export function makeCa(spec: CaSpec): TestCa {
  const issuer = spec.issuer;
  const der = issueCertificate({
    subject: spec.subject,
    issuer: issuer?.subject ?? spec.subject,
    serial: spec.serial ?? 1,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: spec.keys.publicKey,
    signingKey: issuer?.privateKey ?? spec.keys.privateKey,
    extensions: [
      basicConstraints(true, spec.pathLength),
      keyUsage(5, 6),
      subjectKeyId(keyIdFor(spec.keys.publicKey)),
      authorityKeyId(keyIdFor(issuer?.publicKey ?? spec.keys.publicKey)),
    ],
  });
  return { der, subject: spec.subject, privateKey: spec.keys.privateKey, publicKey: spec.keys.publicKey };
}

export interface EkSpec {
  readonly issuer: TestCa;
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial?: Buffer | number;
  /** Default: an empty subject, as the TCG profile allows (the SAN is then critical). */
  readonly subject?: NameSpec;
  readonly issuerName?: NameSpec | Buffer;
  readonly tcg?: { manufacturer: string; model: string; version: string };
  readonly criticalSan?: boolean;
  readonly extraExtensions?: readonly ExtensionSpec[];
}

/** An EK certificate shaped like the TCG EK Credential Profile says. */
export function makeEkCertificate(spec: EkSpec): Buffer {
  const rsa = spec.publicKey.asymmetricKeyType === 'rsa';
  return issueCertificate({
    subject: spec.subject ?? [],
    issuer: spec.issuerName ?? spec.issuer.subject,
    serial: spec.serial ?? 2,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: spec.publicKey,
    signingKey: spec.issuer.privateKey,
    extensions: [
      basicConstraints(false),
      keyUsage(rsa ? 2 : 4),
      authorityKeyId(keyIdFor(spec.issuer.publicKey)),
      tcgSubjectAltName(spec.tcg ?? { manufacturer: 'id:49465800', model: 'SLB9670', version: 'id:000D0009' }, spec.criticalSan ?? true),
      ekCertificateEku(),
      ...(spec.extraExtensions ?? []),
    ],
  });
}
