import { constants, createPrivateKey, createPublicKey, generateKeyPair, privateEncrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { APPROVAL_HASH_ALG } from '@rackseal/pcr-policy';
import {
  marshalTpm2bPublic,
  objectName,
  type RsaPublic,
  TPM_ALG_ID,
  TPMA_OBJECT,
  type TPMT_SIGNATURE,
  tpmtPublicFromKey,
} from '@rackseal/tpm2';

const generateRsaKeyPair = promisify(generateKeyPair);

/** How audit records and `pcr_signing_keys.algorithm` name the key. */
export const APPROVAL_SIGNING_ALGORITHM = 'rsa-2048-rsassa-sha256';

/**
 * The public area of the control plane's PCR-approval signing key as the agent loads it with
 * TPM2_LoadExternal (Part 3 §12.3) into TPM_RH_OWNER: a public-only object (no sensitive part, so
 * fixedTPM, fixedParent and sensitiveDataOrigin are clear, Part 1 §27.2), `sign` set (TPM2_VerifySignature,
 * Part 3 §20.1, needs a signing key), `userWithAuth` set as LoadExternal of an object without a
 * policy expects, not restricted (it signs digests, not TPM-made structures). RSA-2048 with its
 * scheme fixed to RSASSA-SHA256 (Part 2 §11.2.4.5), nameAlg SHA-256: the Name sealed objects'
 * PolicyAuthorize binds is SHA-256 of this area (Part 1 §16).
 */
export const APPROVAL_SIGNING_KEY_TEMPLATE: RsaPublic = {
  type: TPM_ALG_ID.TPM_ALG_RSA,
  nameAlg: APPROVAL_HASH_ALG,
  objectAttributes: TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth,
  authPolicy: Buffer.alloc(0),
  parameters: { symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL }, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSASSA, hashAlg: APPROVAL_HASH_ALG }, keyBits: 2048, exponent: 0 },
  unique: Buffer.alloc(0),
};

/** A new signing key: its private key (PKCS#8 DER, to be sealed at once) and its public area. */
export interface NewApprovalSigningKey {
  readonly privateKey: SecretBytes;
  readonly publicArea: RsaPublic;
  /** TPM2B_PUBLIC of publicArea: what TPM2_LoadExternal takes. */
  readonly tpm2bPublic: Buffer;
  /** nameAlg ‖ SHA-256(TPMT_PUBLIC). */
  readonly name: Buffer;
}

/** Generates an RSA-2048 key (public exponent 65537, which a TPMT_PUBLIC writes as 0). */
export async function createApprovalSigningKey(): Promise<NewApprovalSigningKey> {
  const { privateKey } = await generateRsaKeyPair('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
  const publicArea = tpmtPublicFromKey(createPublicKey(privateKey), APPROVAL_SIGNING_KEY_TEMPLATE);
  return {
    privateKey: new SecretBytes(privateKey.export({ type: 'pkcs8', format: 'der' })),
    publicArea,
    tpm2bPublic: marshalTpm2bPublic(publicArea),
    name: objectName(publicArea),
  };
}

/**
 * DER of DigestInfo { AlgorithmIdentifier sha256 with NULL parameters, OCTET STRING of 32 bytes }
 * without the digest itself (RFC 8017 §9.2, Note 1).
 */
const SHA256_DIGEST_INFO_PREFIX = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * An RSASSA-PKCS1-v1_5 signature (RFC 8017 §8.2.1) over `digest` taken as the message's SHA-256,
 * as TPM2_VerifySignature checks it: the TPM takes the 32-byte aHash as the digest and does not
 * hash it again (Part 3 §20.1), so this signs DigestInfo(SHA-256, digest) itself with the raw
 * private-key operation and EMSA-PKCS1-v1_5 type-1 padding (RFC 8017 §9.2 step 5), never
 * crypto.sign('sha256', digest), which would sign SHA-256(digest).
 */
export function signApprovalDigest(privateKeyDer: SecretBytes, digest: Buffer): TPMT_SIGNATURE {
  if (digest.length !== 32) {
    throw new RangeError(`an approval digest is SHA-256: 32 bytes, got ${digest.length}`);
  }
  const key = createPrivateKey({ key: privateKeyDer.reveal(), format: 'der', type: 'pkcs8' });
  const sig = privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]));
  return { sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: APPROVAL_HASH_ALG, sig } };
}
