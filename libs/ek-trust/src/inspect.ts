import { createHash, createPublicKey } from 'node:crypto';
import { ekPubHash } from '@rackseal/tpm2';
import { parseCertificate, type ParsedCertificate, type TpmSpecification } from './certificate';
import { EkCertificateError, type EkQuirk } from './errors';
import { type CertificateFormat, type CertificateInput, unwrapCertificate } from './input';
import { OID } from './oids';
import { tcgDeviceAttributes } from './tcg';

/** A certificate read from some input, with everything that had to be tolerated to read it. */
export interface ReadCertificate {
  readonly certificate: ParsedCertificate;
  readonly format: CertificateFormat;
  /** Unwrapping quirks (NV header, padding) followed by the certificate's own. */
  readonly quirks: readonly EkQuirk[];
}

/** Reads exactly one certificate from DER, PEM, base64 DER or a raw NV dump. Throws EkCertificateError. */
export function readCertificate(input: CertificateInput): ReadCertificate {
  const unwrapped = unwrapCertificate(input);
  const certificate = parseCertificate(unwrapped.der);
  return { certificate, format: unwrapped.format, quirks: [...unwrapped.quirks, ...certificate.quirks] };
}

export type EkCurve = 'P-256' | 'P-384' | 'P-521';

/** What `rackseal ek inspect` reports (issue 5). JSON-ready: dates are ISO 8601 strings. */
export interface EkInspection {
  /** TCG manufacturer attribute, e.g. `id:49465800`; null when the certificate has none. */
  readonly manufacturer: string | null;
  /** The 4-character TCG vendor ID it encodes (`IFX`, `STM`, `NTC`, `INTC`), trailing NUL/space removed. */
  readonly vendorId: string | null;
  readonly vendorName: string | null;
  readonly model: string | null;
  readonly version: string | null;
  readonly keyAlgorithm: 'rsa' | 'ecc';
  /** RSA modulus size, or the ECC curve's size. */
  readonly keyBits: number;
  /** Only for ECC keys. */
  readonly curve?: EkCurve;
  /** Lowercase hex SHA-256 of the EK's DER SubjectPublicKeyInfo (docs/architecture.md §3), as libs/tpm2 computes it. */
  readonly ekPubHash: string;
  /** Lowercase hex of the serial's content octets as encoded. */
  readonly serialNumber: string;
  readonly issuer: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Lowercase hex SHA-256 of the certificate's DER (without NV header or padding). */
  readonly fingerprint: string;
  readonly format: CertificateFormat;
  /** Whether the certificate carries the TCG EK certificate EKU 2.23.133.8.1. */
  readonly ekCertificateEku: boolean;
  readonly tpmSpecification?: TpmSpecification;
  readonly quirks: readonly EkQuirk[];
}

/** The EK's key type and size; RSA and NIST P-curves are the only EK keys TPM 2.0 defines. */
export function ekKeyInfo(cert: ParsedCertificate): { keyAlgorithm: 'rsa' | 'ecc'; keyBits: number; curve?: EkCurve } {
  const info = cert.publicKeyInfo;
  if (info.type === 'rsa') {
    return { keyAlgorithm: 'rsa', keyBits: info.bits };
  }
  if (info.type === 'ecc') {
    return { keyAlgorithm: 'ecc', keyBits: info.bits, curve: info.curve };
  }
  throw new EkCertificateError('unsupported-key', `an EK key is RSA or ECC on a NIST curve; this certificate holds a ${info.algorithm} key`);
}

/**
 * The certificate's ekPubHash (docs/architecture.md §3): SHA-256 of the DER SubjectPublicKeyInfo as libs/tpm2's
 * `ekPubHash` computes it from the decoded key. When the SPKI is already in the canonical form that
 * decoding would re-export (see PublicKeyInfo.canonical), hashing its bytes gives the same value
 * without an OpenSSL key decode and re-encode (~0.2 ms, the most expensive step of a bulk import);
 * anything else (BER lengths, compressed points, id-RSAES-OAEP labels) goes through libs/tpm2.
 */
export function certificateEkPubHash(cert: ParsedCertificate): string {
  if (cert.publicKeyInfo.canonical) {
    return createHash('sha256').update(cert.spki).digest('hex');
  }
  if (cert.publicKeyInfo.type === 'ecc') {
    // OpenSSL re-exports a compressed point compressed; the TPM's TPMT_PUBLIC always gives the
    // uncompressed one. A JWK round trip yields the uncompressed SPKI both sides agree on.
    return ekPubHash(createPublicKey({ key: cert.publicKey.export({ format: 'jwk' }), format: 'jwk' }));
  }
  return ekPubHash(cert.publicKey);
}

/**
 * Everything an operator checks about an EK certificate before trusting it, from any of the forms a
 * TPM, a vendor or a CSV hands it over in. Throws EkCertificateError when it cannot be read.
 */
export function inspectEkCertificate(input: CertificateInput | ReadCertificate): EkInspection {
  const read = typeof input === 'string' || input instanceof Uint8Array ? readCertificate(input) : input;
  const cert = read.certificate;
  const key = ekKeyInfo(cert);
  return {
    ...tcgDeviceAttributes(cert),
    ...key,
    ekPubHash: certificateEkPubHash(cert),
    serialNumber: cert.serialNumber,
    issuer: cert.issuer.text,
    subject: cert.subject.text,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    fingerprint: cert.fingerprint,
    format: read.format,
    ekCertificateEku: cert.extKeyUsage?.includes(OID.tcgKpEkCertificate) ?? false,
    ...(cert.tpmSpecification === undefined ? {} : { tpmSpecification: cert.tpmSpecification }),
    quirks: read.quirks,
  };
}
