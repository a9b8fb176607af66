/**
 * The PCR policy of a machine group (issue 12 item 3): which bank and PCRs a quote must cover and
 * which value sets are allowed. Plain JSON-shaped data, so the operator API stores and returns it as
 * is; parsePcrPolicy is the only way a value of this type is made from outside input.
 */

/** `enforce`: a mismatch quarantines the machine; `warn`: it is recorded and the machine stays attested. */
export type PcrPolicyMode = 'enforce' | 'warn';

export const PCR_POLICY_MODES: readonly PcrPolicyMode[] = ['enforce', 'warn'];

/** At most this many allowed sets (e.g. the current and the previous kernel, with room for a rollout). */
export const MAX_ALLOWED_SETS = 16;

/** The largest canary event log a set carries (raw bytes, before base64): real firmware logs are 10–80 KiB. */
export const MAX_EVENT_LOG_BYTES = 1024 * 1024;

/** Labels: 1–64 characters, no control or invisible format character, no surrounding space. */
export const MAX_LABEL_LENGTH = 64;

/** Machine names in `promotedFrom`: the inventory's names are shorter than this. */
export const MAX_MACHINE_NAME_LENGTH = 128;

/** Where a set's values come from when it was promoted from a canary machine's quote. */
export interface PromotedFrom {
  readonly machine: string;
  /** ISO 8601 UTC (`2026-12-02T16:10:14.000Z`). */
  readonly at: string;
  /** Base64 of the canary's raw TCG event log, kept so mismatches can be explained event by event. */
  readonly eventLog?: string;
}

export interface PcrValueSet {
  readonly label: string;
  /** PCR index → lowercase hex digest, exactly the policy's PCRs, each the bank's digest size. */
  readonly values: Readonly<Record<number, string>>;
  readonly promotedFrom?: PromotedFrom;
}

export interface PcrPolicy {
  /** The PCR bank as libs/tpm2 names banks (`sha256`, `sha1`, `sha3_256`…). */
  readonly bank: string;
  /** Ascending, unique, 0–23. */
  readonly pcrs: readonly number[];
  /** 1..MAX_ALLOWED_SETS sets, labels unique; a quote matches the policy when it equals one of them. */
  readonly allowedSets: readonly PcrValueSet[];
  readonly mode: PcrPolicyMode;
}

/** What a policy is evaluated against: the PCR values of a verified quote, in one bank. */
export interface QuotedPcrValues {
  readonly bank: string;
  readonly values: ReadonlyMap<number, Buffer>;
}
