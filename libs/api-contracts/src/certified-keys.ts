/**
 * A machine's certified keys as the operator API shows them (GET /v1/machines/:ref/keys): each
 * TPM-resident decrypt key the machine's AK certified (docs/architecture.md §4.4), the live one and
 * the retired ones, newest first.
 */

/** Why a certified key stopped being the machine's key. */
export const CERTIFIED_KEY_RETIRED_REASONS = ['rotated', 'machine-revoked'] as const;
export type CertifiedKeyRetiredReason = (typeof CERTIFIED_KEY_RETIRED_REASONS)[number];

export interface CertifiedKey<Time = string> {
  readonly id: string;
  readonly machineId: string;
  /** The key's Name (nameAlg ‖ digest of its public area), lowercase hex. */
  readonly name: string;
  /** e.g. `rsa-2048`, `ecc-nist-p256`. */
  readonly algorithm: string;
  /** The key's TPMT_PUBLIC, base64, as the TPM marshalled it. */
  readonly publicArea: string;
  /** The attestation registration whose AK certified the key. */
  readonly registrationId: string;
  /** The node credential that sent the certification. */
  readonly credentialId: string;
  readonly certifiedAt: Time;
  /** Null while the key is the machine's live key. */
  readonly retiredAt: Time | null;
  readonly retiredReason: CertifiedKeyRetiredReason | null;
}
