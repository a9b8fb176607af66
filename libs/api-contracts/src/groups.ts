import type { MachineState } from './machines';
import type { AttestationIntervalSource, PolicyMode } from './policies';

/**
 * The machine groups surface (issue 16, the dashboard's groups view): GET /v1/groups, GET
 * /v1/groups/:group and GET /v1/groups/:group/policy/promote-preview. A group is a name the
 * inventory gave machines; it exists while a machine is in it or it has a PCR policy or an
 * attestation interval of its own.
 */

/** The shape of a group's PCR policy, without its sets' values (GET /v1/groups/:group/policy has them). */
export interface GroupPolicyShape {
  readonly mode: PolicyMode;
  readonly bank: string;
  readonly pcrs: readonly number[];
  /** How many allowed sets the policy has. */
  readonly allowedSets: number;
}

/** GET /v1/groups: one group, ordered by name. */
export interface GroupSummary {
  readonly group: string;
  /** The group's machines per state, every state present. */
  readonly machinesByState: Readonly<Record<MachineState, number>>;
  /** Machines, revoked ones left out, quarantined or whose newest attestation was refused (see FailingMachine). */
  readonly failing: number;
  /** Null: the group has no PCR policy (its machines are quarantined at their next attestation). */
  readonly policy: GroupPolicyShape | null;
  /** The interval its machines must attest within: its own, else the fleet default. */
  readonly attestationIntervalSeconds: number;
  readonly intervalSource: AttestationIntervalSource;
}

/** The most failing machines GET /v1/groups/:group lists (by serial), and a promote preview compares. */
export const MAX_GROUP_FAILING_MACHINES = 10_000;

/**
 * A failing machine of a group: not revoked, and quarantined or with a refused attestation newer
 * than its last successful one. `comparison` sets its newest verified quote against the group's
 * allowed sets: the nearest set (fewest differing PCRs, the first in the policy's order on a tie) and
 * the PCRs it differs in. Null without a quote, without a policy, or with a quote of another bank.
 */
export interface FailingMachine<Time = string> {
  readonly id: string;
  readonly serial: string;
  readonly hostname: string | null;
  readonly state: MachineState;
  readonly lastFailure: { readonly at: Time; readonly code: string; readonly reason: string } | null;
  /** When its newest verified quote was recorded; null: none yet. */
  readonly evidenceAt: Time | null;
  readonly evidenceBank: string | null;
  readonly comparison: { readonly nearestSet: string; readonly differingPcrs: readonly number[] } | null;
}

/** GET /v1/groups/:group: the summary and the failing machines (the first MAX_GROUP_FAILING_MACHINES by serial). */
export interface GroupDetail<Time = string> extends GroupSummary {
  readonly failingMachines: readonly FailingMachine<Time>[];
}

/** GET /v1/groups/:group/policy/promote-preview?machine=REF: the machine reference's query parameter. */
export interface PromotePreviewQuery {
  /** Machine id (UUID) or serial. */
  readonly machine: string;
}

/** One current allowed set against the values a promotion would approve. */
export interface PromotePreviewSetComparison {
  readonly label: string;
  /** The PCRs whose new value differs from this set's. */
  readonly differingPcrs: readonly number[];
}

/**
 * What promoting the machine would change, computed without changing anything and refused exactly
 * as the promotion would be (policy.machine-revoked, policy.machine-not-in-group, policy.no-evidence,
 * policy.bank-mismatch, policy.evidence-incomplete). The recovery count is of the group's failing
 * machines whose newest quote has these values for every PCR of the policy: they pass at their next
 * attestation (a machine failing for another reason too, e.g. its EK, would still fail).
 */
export interface PromotePreview<Time = string> {
  readonly group: string;
  readonly machine: { readonly id: string; readonly serial: string; readonly state: MachineState };
  /** The quote the values come from. */
  readonly evidence: { readonly registrationId: string; readonly at: Time; readonly bank: string };
  /** False: the group has no policy; promoting creates one (enforce, the evidence's bank and PCRs). */
  readonly policyExists: boolean;
  readonly mode: PolicyMode;
  readonly bank: string;
  readonly pcrs: readonly number[];
  /** The set the promotion would approve: PCR index → lowercase hex, exactly the policy's PCRs. */
  readonly values: Readonly<Record<string, string>>;
  /** The label of a current set with exactly these values (promoting then approves nothing new), else null. */
  readonly sameAsSet: string | null;
  /** The PCRs whose new value no current set has for that PCR (every PCR without a policy). */
  readonly newPcrValues: readonly number[];
  readonly comparedSets: readonly PromotePreviewSetComparison[];
  readonly recovers: {
    /** Failing machines of the group (the canary included) whose newest quote has exactly these values. */
    readonly count: number;
    /** Their serials, the first 100 by serial. */
    readonly serials: readonly string[];
    /** How many failing machines were compared (at most MAX_GROUP_FAILING_MACHINES). */
    readonly failingCompared: number;
  };
}
