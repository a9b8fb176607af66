/**
 * Key certification (issue 13 item 1, docs/architecture.md §4.4): three signed calls of the node API.
 *
 *   POST /node/v1/keys/challenges   (empty JSON object)     → KeyChallengeResponse
 *   POST /node/v1/keys              CertifyKeyRequest       → CertifiedKeyResponse
 *   GET  /node/v1/keys/current                              → CertifiedKeyResponse, or 404 `key.none`
 *
 * Every call is signed with the node credential (self.ts). The agent asks for a challenge, creates
 * a decrypt key in its TPM, certifies it with the AK of its current attestation (TPM2_Certify,
 * Part 3 §18.2) with the challenge's nonce as qualifyingData, and sends the key's public area with
 * the attestation and its signature. Binary fields are standard base64 of the TPM structure named
 * (TPM 2.0 Library Part 2).
 */

/** Route of the challenge call, below the node API base path (nodeApiPath). */
export const KEY_CHALLENGES_ROUTE = 'keys/challenges';
/** Route of the certify call. */
export const KEYS_ROUTE = 'keys';
/** Route of the machine's live certified key. */
export const CURRENT_KEY_ROUTE = 'keys/current';

/** Limits, in bytes of the decoded value. */
export const KEY_CERTIFICATION_LIMITS = {
  /** The nonce the control plane issues. */
  nonceBytes: 32,
  /** TPM2B_PUBLIC of the key (an RSA-4096 key with a policy is under 700 bytes). */
  publicAreaBytes: 1024,
  /** TPMS_ATTEST of a TPM2_Certify (two Names and a nonce: under 300 bytes). */
  attestBytes: 1024,
  /** TPMT_SIGNATURE (RSA-4096: 518 bytes). */
  signatureBytes: 1024,
} as const;

export interface KeyChallengeResponse {
  /** 32 bytes, base64: TPM2_Certify's qualifyingData. Single-use. */
  readonly nonce: string;
  /** ISO 8601 UTC: the certify call must arrive before this. */
  readonly deadline: string;
}

export interface CertifyKeyRequest {
  /** The key's TPM2B_PUBLIC as TPM2_Create returned it (`tpm2_create -u`): its Name is hashed from these bytes. */
  readonly keyPublic: string;
  /** TPMS_ATTEST bytes of the TPM2_Certify as signed (`tpm2_certify -o`). */
  readonly attest: string;
  /** TPMT_SIGNATURE by the AK (`tpm2_certify -s`). */
  readonly signature: string;
}

/** Algorithm labels a certified key is recorded with. */
export const CERTIFIED_KEY_ALGORITHMS = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ecc-nist-p256', 'ecc-nist-p384', 'ecc-nist-p521'] as const;
export type CertifiedKeyAlgorithm = (typeof CERTIFIED_KEY_ALGORITHMS)[number];

export interface CertifiedKeyResponse {
  /** The certified key's id (a UUID). */
  readonly keyId: string;
  /** The key's Name (nameAlg ‖ digest), lowercase hex. */
  readonly name: string;
  readonly algorithm: CertifiedKeyAlgorithm;
  /** ISO 8601 UTC. */
  readonly certifiedAt: string;
  /** The key this certification retired (rotation), if the machine had one. */
  readonly retiredKeyId?: string;
}
