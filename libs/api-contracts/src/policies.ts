/**
 * The PCR policy surface of the operator API (issue 12 item 3, docs/architecture.md §4.3):
 * GET/PUT/DELETE /v1/groups/:group/policy and POST /v1/groups/:group/policy/promote. The policy's
 * own rules (banks, PCRs, digest sizes, 1–16 sets, labels) are libs/pcr-policy's parsePcrPolicy,
 * which the server applies to every body; these are the wire shapes the CLI reads.
 */

/** `enforce`: a mismatch quarantines the machine; `warn`: it is recorded and the machine stays attested. */
export const POLICY_MODES = ['enforce', 'warn'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];

/** Where a set came from when it was promoted from a canary machine. */
export interface PolicySetOrigin {
  /** The canary's serial. */
  readonly machine: string;
  /** When the canary's quote was verified (ISO 8601). */
  readonly at: string;
  /** Base64 of the canary's raw TCG event log (what mismatches are explained against). */
  readonly eventLog?: string;
}

export interface PolicyValueSet {
  readonly label: string;
  /** PCR index → lowercase hex digest of the policy's bank. */
  readonly values: Readonly<Record<string, string>>;
  readonly promotedFrom?: PolicySetOrigin;
}

/** The body of PUT /v1/groups/:group/policy, and `policy` in the answers. */
export interface PcrPolicyDocument {
  readonly bank: string;
  readonly pcrs: readonly number[];
  readonly allowedSets: readonly PolicyValueSet[];
  readonly mode: PolicyMode;
}

/**
 * The largest PUT /v1/groups/:group/policy body: 16 sets each carrying a canary event log of up to
 * 1 MiB in base64, and room for the values. Every other operator route keeps the 1 MB limit.
 */
export const POLICY_BODY_LIMIT_BYTES = 16 * Math.ceil((1024 * 1024 * 4) / 3) + 64 * 1024;

/** GET and PUT /v1/groups/:group/policy. */
export interface GroupPolicy<Time = string> {
  readonly group: string;
  readonly policy: PcrPolicyDocument;
  /** Lowercase hex SHA-256 of the policy's JSON as stored: the audit records name it. */
  readonly digest: string;
  readonly updatedAt: Time;
  /** e.g. `token:<id>`. */
  readonly updatedBy: string;
}

/** The longest machine reference (a UUID or a serial) a promote body takes. */
export const MAX_POLICY_MACHINE_REF_LENGTH = 128;
/** Labels of allowed sets: 1–64 characters (libs/pcr-policy's MAX_LABEL_LENGTH). */
export const MAX_POLICY_LABEL_LENGTH = 64;

/**
 * POST /v1/groups/:group/policy/promote: the machine's latest verified values (and event log) become
 * the set `label` (replacing a set of that label). `mode`, `bank` and `pcrs` shape a group's first
 * policy (defaults: enforce, the evidence's bank and PCRs); for a group with a policy they may only
 * repeat its values.
 */
export interface PromotePolicyRequest {
  /** The canary: machine id (UUID) or serial. */
  readonly machine: string;
  readonly label: string;
  readonly mode?: PolicyMode;
  readonly bank?: string;
  readonly pcrs?: readonly number[];
}

export interface PolicyPromotion<Time = string> {
  /** false: the group had no policy and this one was created. */
  readonly created: boolean;
  /** true: a set with this label was replaced. */
  readonly replaced: boolean;
  readonly label: string;
  readonly machine: { readonly id: string; readonly serial: string };
  /** The registration whose verified quote the values come from, and when it was verified. */
  readonly registrationId: string;
  readonly evidenceAt: Time;
  readonly policy: GroupPolicy<Time>;
}

/** DELETE /v1/groups/:group/policy. */
export interface PolicyRemoval {
  readonly group: string;
  readonly removed: boolean;
}
