/** Why a certificate could not be read at all (as opposed to read and refused: see ChainFailureReason). */
export type EkCertificateErrorCode =
  /** Neither DER, PEM nor base64 DER (after removing an NV header). */
  | 'not-a-certificate'
  /** The DER does not have the shape of an X.509 certificate. */
  | 'malformed'
  /** The subject public key is not one rackseal can use (EKs are RSA or NIST ECC). */
  | 'unsupported-key';

export class EkCertificateError extends Error {
  constructor(
    readonly code: EkCertificateErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EkCertificateError';
  }
}

/**
 * Deviations from strict X.509/DER that real EK certificates show (shipping TPMs', swtpm's, the CAs of
 * test/fixtures/vendor-cas), each tolerated and reported. None changes which bytes are signed:
 * signatures are always checked over the tbsCertificate exactly as found.
 *
 * Repaired while unwrapping (bytes outside the certificate were removed):
 * - `nv-header`: the TCG NV prefix `10 01 00` + u16 length before the DER;
 * - `trailing-padding`: 0xFF or 0x00 fill after the certificate (ST33 pads to 1600 bytes);
 * - `trailing-data`: other bytes after the certificate.
 * Tolerated inside the certificate (kept as they are):
 * - `non-minimal-serial`: serial INTEGER with redundant leading octets;
 * - `negative-serial`: serial with the sign bit set;
 * - `long-serial`: serial longer than the 20 octets RFC 5280 §4.1.2.2 allows;
 * - `unsorted-set`: a multi-valued RDN of the issuer or subject not in DER SET order;
 * - `critical-san-directory-name`: a critical SAN holding only directoryName(s), which verifiers
 *   that only understand DNS/IP/e-mail names refuse as an unhandled critical extension;
 * - `ber-length`: a length encoded in more octets than needed;
 * - `rsaes-oaep-key`: an RSA key labelled id-RSAES-OAEP (TPM 1.2 EK certificates), read as RSA.
 */
export type EkQuirk =
  | 'nv-header'
  | 'trailing-padding'
  | 'trailing-data'
  | 'non-minimal-serial'
  | 'negative-serial'
  | 'long-serial'
  | 'unsorted-set'
  | 'critical-san-directory-name'
  | 'ber-length'
  | 'rsaes-oaep-key';
