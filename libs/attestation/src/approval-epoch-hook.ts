import type { EntityManager } from 'typeorm';

/**
 * What else a group's move to a new approval epoch decides, in its transaction: issue 14's deliveries
 * (libs/deliveries) make every `pcr-sealed` envelope of the group's machines pending again, to be
 * sealed at the new epoch (an envelope of the old one no longer opens). An interface here,
 * implemented there, because libs/deliveries depends on this library; optional: without it a bump
 * decides nothing more.
 */
export abstract class ApprovalEpochHook {
  /** The group has just moved from `fromEpoch` to `toEpoch`, inside `manager`'s transaction. */
  abstract epochBumped(event: { group: string; fromEpoch: number; toEpoch: number; actor: string }, manager: EntityManager): Promise<void>;
}
