import type { Machine as WireMachine, MachineFailure as WireMachineFailure } from '@rackseal/api-contracts';
import type { MachineState } from './machine-state';

/** One row of `machines`: an inventory entry bound to one ekPubHash (docs/architecture.md §3); its shape is the operator API's. */
export type Machine = WireMachine<Date>;

/** A refused attestation as recorded on its machine (`machines.last_failure`). */
export type MachineFailure = WireMachineFailure<Date>;

/** One row of `machine_transitions`: a state change, who made it and why. */
export interface MachineTransition {
  readonly seq: number;
  readonly machineId: string;
  readonly from: MachineState;
  readonly to: MachineState;
  readonly reason: string;
  readonly actor: string;
  readonly at: Date;
}

export interface TransitionRequest {
  readonly machineId: string;
  /** The state the caller saw; the change applies only if the machine is still in it. */
  readonly from: MachineState;
  readonly to: MachineState;
  readonly reason: string;
  /** Who made the change, e.g. `system:worker`, `token:<id>`. */
  readonly actor: string;
}

export interface MachineListQuery {
  /** Only this machine (with lockForShare: read one machine locked). */
  readonly id?: string;
  readonly state?: MachineState;
  readonly group?: string;
  /**
   * Only machines not attested since this instant: never attested, or last attested before it.
   * Revoked machines are left out (they are never attested again): the fleet liveness check.
   */
  readonly notAttestedSince?: Date;
  /**
   * Only machines overdue at `at`: not revoked, and never attested or last attested longer ago than
   * their group's own interval (group_attestation_intervals), else `fleetIntervalMs`.
   */
  readonly overdue?: { readonly at: Date; readonly fleetIntervalMs: number };
  /** Paging: only serials after this one. */
  readonly after?: string;
  readonly limit: number;
  /**
   * Inside a transaction: lock the rows read FOR SHARE, so their state cannot change until it ends
   * (a machine starting a re-attestation waits; one that changed before the lock is re-checked
   * against the filters). Not with `overdue`.
   */
  readonly lockForShare?: boolean;
}

/** What landing staged inventory rows did. */
export interface LandedCounts {
  readonly created: number;
  readonly updated: number;
}

export interface StagedChangeCounts extends LandedCounts {
  readonly unchanged: number;
}

/** POST /v1/machines/:ref/revoke: why, and who (`token:<id>`). */
export interface RevokeRequest {
  readonly reason: string;
  readonly actor: string;
}

/** What revoke did: `changed` false when the machine was already revoked (nothing written). */
export interface RevokeResult {
  readonly changed: boolean;
  readonly machine: Machine;
  /** The state it was revoked from (when changed). */
  readonly from?: MachineState;
}

/** A machine named by its id (a UUID) or its serial, as operators type it. */
export type MachineRef = { readonly id: string } | { readonly serial: string };

/** Machines per state; every state is present (0 when none). */
export type MachineStateCounts = { readonly [State in MachineState]: number };

/** One group's machines per state and how many of them are failing (MachinesRepository.countByGroup). */
export interface GroupMachineCounts {
  readonly group: string;
  readonly byState: MachineStateCounts;
  readonly failing: number;
}

/** The liveness gauges: overdue machines per state, and per group with the group's own interval (null: the fleet default). */
export interface OverdueCounts {
  readonly byState: MachineStateCounts;
  readonly byGroup: readonly { readonly group: string | null; readonly intervalSeconds: number | null; readonly overdue: number }[];
}
