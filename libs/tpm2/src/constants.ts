/**
 * TPM 2.0 constants, named exactly as in TPM 2.0 Library Part 2: Structures (rev 1.59).
 * Each table cites its section. Values not listed here are refused by the parsers.
 */

/** Part 2 §6.3 TPM_ALG_ID. */
export const TPM_ALG_ID = {
  TPM_ALG_RSA: 0x0001,
  TPM_ALG_TDES: 0x0003,
  TPM_ALG_SHA1: 0x0004,
  TPM_ALG_HMAC: 0x0005,
  TPM_ALG_AES: 0x0006,
  TPM_ALG_MGF1: 0x0007,
  TPM_ALG_KEYEDHASH: 0x0008,
  TPM_ALG_XOR: 0x000a,
  TPM_ALG_SHA256: 0x000b,
  TPM_ALG_SHA384: 0x000c,
  TPM_ALG_SHA512: 0x000d,
  TPM_ALG_NULL: 0x0010,
  TPM_ALG_SM3_256: 0x0012,
  TPM_ALG_SM4: 0x0013,
  TPM_ALG_RSASSA: 0x0014,
  TPM_ALG_RSAES: 0x0015,
  TPM_ALG_RSAPSS: 0x0016,
  TPM_ALG_OAEP: 0x0017,
  TPM_ALG_ECDSA: 0x0018,
  TPM_ALG_ECDH: 0x0019,
  TPM_ALG_ECDAA: 0x001a,
  TPM_ALG_SM2: 0x001b,
  TPM_ALG_ECSCHNORR: 0x001c,
  TPM_ALG_ECMQV: 0x001d,
  TPM_ALG_KDF1_SP800_56A: 0x0020,
  TPM_ALG_KDF2: 0x0021,
  TPM_ALG_KDF1_SP800_108: 0x0022,
  TPM_ALG_ECC: 0x0023,
  TPM_ALG_SYMCIPHER: 0x0025,
  TPM_ALG_CAMELLIA: 0x0026,
  TPM_ALG_SHA3_256: 0x0027,
  TPM_ALG_SHA3_384: 0x0028,
  TPM_ALG_SHA3_512: 0x0029,
  TPM_ALG_CTR: 0x0040,
  TPM_ALG_OFB: 0x0041,
  TPM_ALG_CBC: 0x0042,
  TPM_ALG_CFB: 0x0043,
  TPM_ALG_ECB: 0x0044,
} as const;

export type TPM_ALG_ID = (typeof TPM_ALG_ID)[keyof typeof TPM_ALG_ID];

const ALG_NAMES = new Map<number, string>(Object.entries(TPM_ALG_ID).map(([name, value]) => [value, name]));

/** `TPM_ALG_SHA256` for 0x000b; `0x1234` for an unknown value (for messages only). */
export function algName(alg: number): string {
  return ALG_NAMES.get(alg) ?? `0x${alg.toString(16).padStart(4, '0')}`;
}

/** Part 2 §6.4 TPM_ECC_CURVE. */
export const TPM_ECC_CURVE = {
  TPM_ECC_NONE: 0x0000,
  TPM_ECC_NIST_P192: 0x0001,
  TPM_ECC_NIST_P224: 0x0002,
  TPM_ECC_NIST_P256: 0x0003,
  TPM_ECC_NIST_P384: 0x0004,
  TPM_ECC_NIST_P521: 0x0005,
  TPM_ECC_BN_P256: 0x0010,
  TPM_ECC_BN_P638: 0x0011,
  TPM_ECC_SM2_P256: 0x0020,
} as const;

/** Part 2 §6.9 TPM_ST (structure tags). */
export const TPM_ST = {
  TPM_ST_NO_SESSIONS: 0x8001,
  TPM_ST_SESSIONS: 0x8002,
  TPM_ST_ATTEST_NV: 0x8014,
  TPM_ST_ATTEST_COMMAND_AUDIT: 0x8015,
  TPM_ST_ATTEST_SESSION_AUDIT: 0x8016,
  TPM_ST_ATTEST_CERTIFY: 0x8017,
  TPM_ST_ATTEST_QUOTE: 0x8018,
  TPM_ST_ATTEST_TIME: 0x8019,
  TPM_ST_ATTEST_CREATION: 0x801a,
  TPM_ST_ATTEST_NV_DIGEST: 0x801c,
} as const;

/** Part 2 §6.2 TPM_GENERATED: the magic at the start of every TPMS_ATTEST. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** Part 2 §8.3 TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
  x509sign: 0x00080000,
} as const;

export type TPMA_OBJECT_NAME = keyof typeof TPMA_OBJECT;

/** Part 2 §7.4 TPM_RH: permanent handles. */
export const TPM_RH = {
  TPM_RH_OWNER: 0x40000001,
  TPM_RH_NULL: 0x40000007,
  TPM_RS_PW: 0x40000009,
  TPM_RH_LOCKOUT: 0x4000000a,
  TPM_RH_ENDORSEMENT: 0x4000000b,
  TPM_RH_PLATFORM: 0x4000000c,
} as const;

/** Part 2 §6.5.2 TPM_CC: the command codes used in policy digests and by the command client. */
export const TPM_CC = {
  TPM_CC_EvictControl: 0x00000120,
  TPM_CC_Create: 0x00000153,
  TPM_CC_Import: 0x00000156,
  TPM_CC_Load: 0x00000157,
  TPM_CC_Quote: 0x00000158,
  TPM_CC_RSA_Decrypt: 0x00000159,
  TPM_CC_ECDH_ZGen: 0x00000154,
  TPM_CC_Unseal: 0x0000015e,
  TPM_CC_PolicySecret: 0x00000151,
  TPM_CC_ActivateCredential: 0x00000147,
  TPM_CC_Certify: 0x00000148,
  TPM_CC_PolicyOR: 0x00000171,
  TPM_CC_PolicyCommandCode: 0x0000016c,
  TPM_CC_PolicyPCR: 0x0000017f,
  TPM_CC_PolicyAuthorize: 0x0000016a,
  TPM_CC_PolicyAuthorizeNV: 0x00000192,
  TPM_CC_PolicyGetDigest: 0x00000189,
  TPM_CC_StartAuthSession: 0x00000176,
  TPM_CC_FlushContext: 0x00000165,
  TPM_CC_GetRandom: 0x0000017b,
  TPM_CC_GetCapability: 0x0000017a,
  TPM_CC_Startup: 0x00000144,
  TPM_CC_CreatePrimary: 0x00000131,
  TPM_CC_ReadPublic: 0x00000173,
  TPM_CC_PCR_Read: 0x0000017e,
  TPM_CC_PCR_Extend: 0x00000182,
  TPM_CC_NV_Read: 0x0000014e,
  TPM_CC_NV_ReadPublic: 0x00000169,
  TPM_CC_VerifySignature: 0x00000177,
} as const;
