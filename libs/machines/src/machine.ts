import type { Machine as WireMachine } from '@rackseal/api-contracts';
import type { MachineState } from './machine-state';

/** One row of `machines`: an inventory entry bound to one ekPubHash (docs/architecture.md §3); its shape is the operator API's. */
export type Machine = WireMachine<Date>;

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
  readonly group?: string;
  /** Paging: only serials after this one. */
  readonly after?: string;
  readonly limit: number;
}

/** What landing staged inventory rows did. */
export interface LandedCounts {
  readonly created: number;
  readonly updated: number;
}

export interface StagedChangeCounts extends LandedCounts {
  readonly unchanged: number;
}
