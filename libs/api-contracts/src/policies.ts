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
  /**
   * The quote the operator saw (the preview's evidence.registrationId): refused with 409
   * policy.evidence-changed when the machine's newest verified quote is another by now, so what is
   * approved is what was shown. Without it, the newest quote is promoted, whichever it is.
   */
  readonly registrationId?: string;
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

/**
 * POST /v1/groups/:group/policy/sets (`rackseal policy approve`): approves one more PCR state of a
 * group whose policy exists, from values the operator states (a state predicted before a rollout,
 * where `promote` takes a canary's measured ones). Replaces a set of the same label.
 */
export interface ApprovePolicySetRequest {
  readonly label: string;
  /** PCR index → hex digest: exactly the policy's PCRs, each of its bank's size. */
  readonly values: Readonly<Record<string, string>>;
}

/**
 * The answer to approve (POST …/policy/sets) and withdraw (DELETE …/policy/sets/:label): the policy
 * after the change and the group's approval epoch (a withdrawal moves it on: envelopes sealed to an
 * older epoch are re-wrapped, docs/decisions.md "PCR approvals").
 */
export interface PolicySetChange<Time = string> {
  readonly label: string;
  /** approve: true when a set of this label was replaced. withdraw: always false. */
  readonly replaced: boolean;
  readonly approvalEpoch: number;
  readonly policy: GroupPolicy<Time>;
}

/** DELETE /v1/groups/:group/policy. */
export interface PolicyRemoval {
  readonly group: string;
  readonly removed: boolean;
}

/**
 * A group's attestation interval (issue 12 item 7): how often its machines must attest, what GET
 * /node/v1/self's `nextAttestationDue` and the liveness checks (GET /v1/machines?overdue=true,
 * /metrics) count against. Bounds: at least 10 s (what rackseal-agent run accepts as an interval),
 * at most 31 days (MACHINE_ATTESTATION_INTERVAL_MS's ceiling, so a group can say what the fleet
 * default can).
 */
export const MIN_ATTESTATION_INTERVAL_SECONDS = 10;
export const MAX_ATTESTATION_INTERVAL_SECONDS = 31 * 86_400;

/** PUT /v1/groups/:group/interval. */
export interface SetAttestationIntervalRequest {
  /** Whole seconds, MIN_ATTESTATION_INTERVAL_SECONDS to MAX_ATTESTATION_INTERVAL_SECONDS. */
  readonly attestationIntervalSeconds: number;
}

/** `group`: the group's own interval; `fleet-default`: MACHINE_ATTESTATION_INTERVAL_MS applies. */
export const ATTESTATION_INTERVAL_SOURCES = ['group', 'fleet-default'] as const;
export type AttestationIntervalSource = (typeof ATTESTATION_INTERVAL_SOURCES)[number];

/** GET, PUT and DELETE /v1/groups/:group/interval: the interval the group's machines are held to. */
export interface GroupAttestationInterval<Time = string> {
  readonly group: string;
  /** The interval in force: the group's own, else the fleet default. */
  readonly attestationIntervalSeconds: number;
  readonly source: AttestationIntervalSource;
  /** MACHINE_ATTESTATION_INTERVAL_MS in seconds: what applies without the group's own. */
  readonly fleetDefaultSeconds: number;
  /** When and by whom the group's own interval was set; null with the fleet default. */
  readonly updatedAt: Time | null;
  readonly updatedBy: string | null;
}

/** DELETE /v1/groups/:group/interval: `changed` false when the group had no interval of its own (nothing written). */
export interface GroupAttestationIntervalRemoval<Time = string> {
  readonly changed: boolean;
  readonly interval: GroupAttestationInterval<Time>;
}

/** One signed approval as the operator sees it (GET /v1/groups/:group/approvals). */
export interface GroupApproval<Time = string> {
  /** The allowed set's label in the group's policy. */
  readonly label: string;
  /** The PolicyPCR digest (SHA-256 session) of the set's values, hex. */
  readonly approvedPolicy: string;
  /** TPMT_SIGNATURE over SHA-256(approvedPolicy ‖ policyRef), base64. */
  readonly signature: string;
  readonly signedAt: Time;
}

/**
 * GET /v1/groups/:group/approvals (issue 13 item 5): what GET /node/v1/approvals answers the
 * group's machines, with when each approval was signed. A group without a policy has no approvals
 * (and bank sha256, no PCRs); `epoch` is still its current one.
 */
export interface GroupApprovals<Time = string> {
  readonly group: string;
  /** The group's current approval epoch (≥ 1): bumped each time a policy change withdraws an approved state. */
  readonly epoch: number;
  /** SHA-256 policyRef of (group, epoch), hex: what the group's pcr-sealed objects' PolicyAuthorize names. */
  readonly policyRef: string;
  readonly bank: string;
  readonly pcrs: readonly number[];
  /** The control plane's approval signing key: TPM2B_PUBLIC, base64 (for TPM2_LoadExternal in the owner hierarchy). */
  readonly signingKeyPublic: string;
  /** Its Name, hex. */
  readonly signingKeyName: string;
  readonly approvals: readonly GroupApproval<Time>[];
}
