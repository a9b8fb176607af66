/**
 * TPM 2.0 constants, named exactly as in TPM 2.0 Library Part 2: Structures (rev 1.59).
 * Only the values rackseal uses; each table cites its section.
 */

/** Part 2 §6.3 TPM_ALG_ID. */
export const TPM_ALG_ID = {
  TPM_ALG_RSA: 0x0001,
  TPM_ALG_SHA1: 0x0004,
  TPM_ALG_HMAC: 0x0005,
  TPM_ALG_AES: 0x0006,
  TPM_ALG_KEYEDHASH: 0x0008,
  TPM_ALG_SHA256: 0x000b,
  TPM_ALG_SHA384: 0x000c,
  TPM_ALG_SHA512: 0x000d,
  TPM_ALG_NULL: 0x0010,
  TPM_ALG_RSASSA: 0x0014,
  TPM_ALG_RSAPSS: 0x0016,
  TPM_ALG_OAEP: 0x0017,
  TPM_ALG_ECDSA: 0x0018,
  TPM_ALG_ECC: 0x0023,
  TPM_ALG_CFB: 0x0043,
} as const;

/** Part 2 §6.4 TPM_ECC_CURVE. */
export const TPM_ECC_CURVE = {
  TPM_ECC_NIST_P256: 0x0003,
  TPM_ECC_NIST_P384: 0x0004,
} as const;

/** Part 2 §6.9 TPM_ST (structure tags). */
export const TPM_ST = {
  TPM_ST_NO_SESSIONS: 0x8001,
  TPM_ST_SESSIONS: 0x8002,
  TPM_ST_ATTEST_NV: 0x8014,
  TPM_ST_ATTEST_CERTIFY: 0x8017,
  TPM_ST_ATTEST_QUOTE: 0x8018,
  TPM_ST_ATTEST_TIME: 0x8019,
  TPM_ST_ATTEST_CREATION: 0x801a,
} as const;

/** Part 2 §6.2 TPM_GENERATED: the magic at the start of every TPMS_ATTEST. */
export const TPM_GENERATED_VALUE = 0xff544347;
