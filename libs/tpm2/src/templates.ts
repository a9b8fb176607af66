import type { KeyObject } from 'node:crypto';
import { TPM_ALG_ID, TPM_ECC_CURVE, TPMA_OBJECT } from './constants';
import { KeyConversionError, tpmtPublicFromKey, uniqueFromKey } from './keys';
import { SCHEME_NULL } from './structures/schemes';
import type { EccPublic, KeyedHashPublic, RsaPublic } from './structures/tpmt-public';

const hex = (text: string) => Buffer.from(text, 'hex');

/**
 * TCG EK Credential Profile 2.0 §B.6 PolicyA (SHA-256): PolicySecret(TPM_RH_ENDORSEMENT), the EK
 * authPolicy of the low-range templates: SHA256(SHA256(0^32 ‖ TPM_CC_PolicySecret ‖ 4000000B) ‖ '').
 */
export const EK_POLICY_A_SHA256 = hex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');

/**
 * TCG EK Credential Profile 2.0 §B.6 PolicyB (SHA-384) of the high-range templates: a PolicyOR
 * that also admits the EK's own auth. Verified against swtpm 0.7.1's P-384 EK (0x81010016).
 */
export const EK_POLICY_B_SHA384 = hex(
  'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
);

/** fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt = 0x000300b2. */
const EK_ATTRIBUTES_LOW =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.adminWithPolicy |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt;

/** The high-range templates also set userWithAuth (PolicyB admits it): 0x000300f2. */
const EK_ATTRIBUTES_HIGH = EK_ATTRIBUTES_LOW | TPMA_OBJECT.userWithAuth;

const AES_128_CFB = { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 128, mode: TPM_ALG_ID.TPM_ALG_CFB };
const AES_256_CFB = { algorithm: TPM_ALG_ID.TPM_ALG_AES, keyBits: 256, mode: TPM_ALG_ID.TPM_ALG_CFB };

/** EK Credential Profile §B.3.3 Template L-1: RSA-2048, SHA-256, AES-128-CFB; unique = 256 zero bytes. */
export const EK_TEMPLATE_RSA_L1: RsaPublic = {
  type: TPM_ALG_ID.TPM_ALG_RSA,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES_LOW,
  authPolicy: EK_POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
  unique: Buffer.alloc(256),
};

/** EK Credential Profile §B.3.4 Template L-2: ECC NIST P-256, SHA-256, AES-128-CFB; unique = 32+32 zero bytes. */
export const EK_TEMPLATE_ECC_L2: EccPublic = {
  type: TPM_ALG_ID.TPM_ALG_ECC,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: EK_ATTRIBUTES_LOW,
  authPolicy: EK_POLICY_A_SHA256,
  parameters: { symmetric: AES_128_CFB, scheme: SCHEME_NULL, curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256, kdf: SCHEME_NULL },
  unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
};

/** EK Credential Profile §B.4.5 Template H-3: ECC NIST P-384, SHA-384, AES-256-CFB; empty unique. */
export const EK_TEMPLATE_ECC_P384_H3: EccPublic = {
  type: TPM_ALG_ID.TPM_ALG_ECC,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA384,
  objectAttributes: EK_ATTRIBUTES_HIGH,
  authPolicy: EK_POLICY_B_SHA384,
  parameters: { symmetric: AES_256_CFB, scheme: SCHEME_NULL, curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P384, kdf: SCHEME_NULL },
  unique: { x: Buffer.alloc(0), y: Buffer.alloc(0) },
};

/**
 * The EK's public area for an EK public key known only from its certificate or a PEM file, from
 * the TCG template its algorithm implies (RSA-2048 → L-1, P-256 → L-2, P-384 → H-3). Server-side
 * MakeCredential and import blobs only need its nameAlg and symmetric definition, which these fix.
 */
export function ekPublicFromKey(key: KeyObject): RsaPublic | EccPublic {
  const unique = uniqueFromKey(key);
  if (unique.type === 'rsa') {
    if (unique.keyBits !== 2048) {
      throw new KeyConversionError(`no default EK template for RSA-${unique.keyBits}`);
    }
    return tpmtPublicFromKey(key, EK_TEMPLATE_RSA_L1);
  }
  switch (unique.curveID) {
    case TPM_ECC_CURVE.TPM_ECC_NIST_P256:
      return tpmtPublicFromKey(key, EK_TEMPLATE_ECC_L2);
    case TPM_ECC_CURVE.TPM_ECC_NIST_P384:
      return tpmtPublicFromKey(key, EK_TEMPLATE_ECC_P384_H3);
    default:
      throw new KeyConversionError(`no default EK template for curve 0x${unique.curveID.toString(16)}`);
  }
}

/** fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA | restricted | sign = 0x00050472. */
export const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.noDA |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.sign;

/** Attestation key: RSA-2048 restricted signing, RSASSA-SHA256. */
export const AK_TEMPLATE_RSA: RsaPublic = {
  type: TPM_ALG_ID.TPM_ALG_RSA,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: AK_ATTRIBUTES,
  authPolicy: Buffer.alloc(0),
  parameters: {
    symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL },
    scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSASSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 },
    keyBits: 2048,
    exponent: 0,
  },
  unique: Buffer.alloc(0),
};

/** Attestation key: ECC P-256 restricted signing, ECDSA-SHA256. */
export const AK_TEMPLATE_ECC: EccPublic = {
  type: TPM_ALG_ID.TPM_ALG_ECC,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: AK_ATTRIBUTES,
  authPolicy: Buffer.alloc(0),
  parameters: {
    symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL },
    scheme: { scheme: TPM_ALG_ID.TPM_ALG_ECDSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 },
    curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256,
    kdf: SCHEME_NULL,
  },
  unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
};

/**
 * The TPM-resident decrypt key secrets are wrapped to (docs/architecture.md §3, §4.5): RSA-2048, decrypt only, never
 * leaves the TPM. Scheme NULL so TPM2_RSA_Decrypt names OAEP-SHA256 per call.
 */
export const CERTIFIED_DECRYPT_KEY_TEMPLATE: RsaPublic = {
  type: TPM_ALG_ID.TPM_ALG_RSA,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes:
    TPMA_OBJECT.fixedTPM |
    TPMA_OBJECT.fixedParent |
    TPMA_OBJECT.sensitiveDataOrigin |
    TPMA_OBJECT.userWithAuth |
    TPMA_OBJECT.noDA |
    TPMA_OBJECT.decrypt,
  authPolicy: Buffer.alloc(0),
  parameters: { symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL }, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
  unique: Buffer.alloc(0),
};

/**
 * The ECC form of the certified decrypt key: NIST P-256, the same attributes, scheme and KDF NULL
 * (TPM2_ECDH_ZGen, Part 3 §14.5, takes a key whose scheme is NULL or ECDH). Secrets reach it by
 * one-pass ECDH: the wrapper's ephemeral point, Z recovered in the TPM with ECDH_ZGen.
 */
export const CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC: EccPublic = {
  type: TPM_ALG_ID.TPM_ALG_ECC,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: CERTIFIED_DECRYPT_KEY_TEMPLATE.objectAttributes,
  authPolicy: Buffer.alloc(0),
  parameters: { symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL }, scheme: SCHEME_NULL, curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256, kdf: SCHEME_NULL },
  unique: { x: Buffer.alloc(0), y: Buffer.alloc(0) },
};

/** The SRK attributes of both Provisioning Guidance templates: a restricted decryption (storage) key, 0x00030472. */
const SRK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.noDA |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt;

/**
 * TCG TPM v2.0 Provisioning Guidance §7.5.1 Storage Primary Key (SRK) template, RSA-2048, as
 * go-tpm's RSASRKTemplate: fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA |
 * restricted | decrypt (0x00030472), no policy (the owner's empty password authorizes), AES-128-CFB,
 * unique = 256 zero bytes. Any tool that follows the guidance derives the same SRK.
 */
export const SRK_TEMPLATE_RSA: RsaPublic = {
  type: TPM_ALG_ID.TPM_ALG_RSA,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: SRK_ATTRIBUTES,
  authPolicy: Buffer.alloc(0),
  parameters: { symmetric: AES_128_CFB, scheme: SCHEME_NULL, keyBits: 2048, exponent: 0 },
  unique: Buffer.alloc(256),
};

/**
 * Provisioning Guidance §7.5.1 SRK template, ECC NIST P-256 (go-tpm's ECCSRKTemplate): the RSA
 * template's attributes (0x00030472) and AES-128-CFB, scheme and KDF NULL, unique = two 32-byte zero
 * coordinates. rackseal derives this one by default: a TPM derives a P-256 primary in a few ms where an
 * RSA-2048 SRK costs a prime search (≈65 ms on swtpm, more on hardware), on every boot that re-derives it.
 * Any RSA child (the decrypt key) may live under it.
 */
export const SRK_TEMPLATE_ECC: EccPublic = {
  type: TPM_ALG_ID.TPM_ALG_ECC,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: SRK_ATTRIBUTES,
  authPolicy: Buffer.alloc(0),
  parameters: { symmetric: AES_128_CFB, scheme: SCHEME_NULL, curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256, kdf: SCHEME_NULL },
  unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
};

/**
 * A secret the agent seals under the SRK (operations/sealed-secret.ts): a sealed data object, i.e. a
 * keyedHash object with sign and decrypt clear and scheme NULL (Part 2 §12.2.3.3), SHA-256 Name.
 * Attributes (Part 2 §8.3): fixedTPM | fixedParent (it can never be duplicated, so only the parent
 * it was created under, in this TPM, can load it), userWithAuth with an empty authValue (the TPM is
 * the factor: an authValue kept beside the blob would add nothing), noDA (an empty authValue is
 * nothing to guess, and a lockout must not lock the agent out of its own credential), and
 * sensitiveDataOrigin clear: the data is the caller's (Part 3 §12.1, TPM_RC_ATTRIBUTES otherwise).
 * = 0x00000452. The TPM fills `unique` (H_nameAlg(seedValue ‖ data)).
 */
export const SEALED_SECRET_TEMPLATE: KeyedHashPublic = {
  type: TPM_ALG_ID.TPM_ALG_KEYEDHASH,
  nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
  objectAttributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA,
  authPolicy: Buffer.alloc(0),
  parameters: { scheme: SCHEME_NULL },
  unique: Buffer.alloc(0),
};
