import { algName, checkAkAttributes, TPM_ALG_ID, type TPMT_PUBLIC } from '@rackseal/tpm2';

/** Hashes an AK may sign and name with: SHA-256 or stronger (SHA-1 is collision-broken, RFC 9155 deprecates it in signatures). */
const STRONG_HASHES: ReadonlySet<number> = new Set([
  TPM_ALG_ID.TPM_ALG_SHA256,
  TPM_ALG_ID.TPM_ALG_SHA384,
  TPM_ALG_ID.TPM_ALG_SHA512,
  TPM_ALG_ID.TPM_ALG_SHA3_256,
  TPM_ALG_ID.TPM_ALG_SHA3_384,
  TPM_ALG_ID.TPM_ALG_SHA3_512,
]);

/** The signing schemes an AK may fix, by key type (TPM 2.0 Library Part 2 §11.2.3, §11.2.5). */
const SCHEMES: Readonly<Record<number, readonly number[]>> = {
  [TPM_ALG_ID.TPM_ALG_RSA]: [TPM_ALG_ID.TPM_ALG_RSASSA, TPM_ALG_ID.TPM_ALG_RSAPSS],
  [TPM_ALG_ID.TPM_ALG_ECC]: [TPM_ALG_ID.TPM_ALG_ECDSA],
};

/**
 * Why an AK is not acceptable, or undefined. Beyond libs/tpm2's attribute check (restricted, sign,
 * fixedTPM, fixedParent, sensitiveDataOrigin, not decrypt): the key must fix its scheme (a NULL
 * scheme would let each quote pick one, SHA-1 included) to RSASSA, RSAPSS or ECDSA with a SHA-256+
 * hash, and its Name must be a SHA-256+ digest (the credential is bound to that Name, Part 1 §24).
 * userWithAuth is allowed: the AK's password authorizes the quote on the machine, it proves nothing
 * to the verifier either way.
 */
export function akProblem(pub: TPMT_PUBLIC): string | undefined {
  const attributes = checkAkAttributes(pub);
  if (!attributes.ok) {
    return attributes.message;
  }
  if (!STRONG_HASHES.has(pub.nameAlg)) {
    return `AK nameAlg ${algName(pub.nameAlg)} is weaker than SHA-256`;
  }
  if (pub.type !== TPM_ALG_ID.TPM_ALG_RSA && pub.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    return 'AK must be an RSA or ECC key';
  }
  const scheme = pub.parameters.scheme;
  if (!(SCHEMES[pub.type] ?? []).includes(scheme.scheme)) {
    return `AK scheme ${algName(scheme.scheme)} is not one of ${(SCHEMES[pub.type] ?? []).map(algName).join(', ')}`;
  }
  if (scheme.hashAlg === undefined || !STRONG_HASHES.has(scheme.hashAlg)) {
    return `AK signing hash ${scheme.hashAlg === undefined ? 'none' : algName(scheme.hashAlg)} is weaker than SHA-256`;
  }
  return undefined;
}
