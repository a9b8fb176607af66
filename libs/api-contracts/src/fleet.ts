import type { RuntimeVerdictView } from './runtime-policies';
import type { DeliveryState } from './deliveries';
import type { MachineState } from './machines';

/** How far back GET /v1/fleet/overview counts refusals. */
export const REFUSAL_WINDOW_SECONDS = 24 * 60 * 60;

/** At most this many of the newest audit records are read for the refusal counts (a bounded scan). */
export const REFUSAL_SCAN_RECORDS = 10_000;

/** Refused audit records of one action and code within the window. */
export interface RefusalCount {
  readonly action: string;
  /** The refusal's error code (`attestation.policy-mismatch`), or null when the record names none. */
  readonly code: string | null;
  readonly count: number;
}

/**
 * GET /v1/fleet/overview: the dashboard's first page in one call, read through the same owners as
 * the /metrics gauges (machines, deliveries, audit).
 */
export interface FleetOverview<Time = string> {
  readonly at: Time;
  readonly machinesByState: Readonly<Record<MachineState, number>>;
  /** Machines, revoked ones left out, not attested within their group's interval. */
  readonly overdue: number;
  readonly deliveriesByState: Readonly<Record<DeliveryState, number>>;
  readonly refusals: {
    readonly windowSeconds: number;
    /** How many of the newest records were read (REFUSAL_SCAN_RECORDS at most). */
    readonly scannedRecords: number;
    readonly byReason: readonly RefusalCount[];
  };
  readonly audit: {
    /** Records appended and not yet sequenced, and how long the oldest has waited. */
    readonly pending: number;
    readonly oldestPendingAgeMs: number;
    /** Records sequenced but not yet under a signed checkpoint. */
    readonly unsigned: number;
    readonly treeSize: number;
    readonly latestCheckpoint: { readonly treeSize: number; readonly signedAt: Time; readonly rootHash: string } | null;
  };
}

/** GET /v1/machines/:ref/evidence: the PCR values of the machine's newest verified quote. */
export interface MachineEvidence<Time = string> {
  readonly registrationId: string;
  readonly at: Time;
  readonly bank: string;
  /** PCR index (decimal) → lowercase hex digest. */
  readonly values: Readonly<Record<string, string>>;
  /** The last verdict of the group's runtime policy on the machine's IMA list, when one judged it. */
  readonly runtime?: RuntimeVerdictView;
}
