import type { Machine } from '@rackseal/machines';
import type { EntityManager } from 'typeorm';

/**
 * What else a machine's new trust decides, in the decision's transaction: issue 14's deliveries
 * (libs/deliveries) plan the deliveries a machine can now receive — the current version of every
 * secret targeting it once it is attested, and those bound to a certified key once it has one. An
 * interface here, implemented there, because libs/deliveries depends on this library (the machine's
 * wrapping keys) and each table has one owner (docs/architecture.md §9). Optional: without it an
 * attestation decides nothing more.
 */
export abstract class AttestedMachineHook {
  /** The machine has just moved to `attested` (a first attestation or a re-attestation). */
  abstract attested(machine: Machine, at: Date, manager: EntityManager): Promise<void>;
  /** The machine has a new live certified key (not called for the same key certified again). */
  abstract keyCertified(machine: Machine, at: Date, manager: EntityManager): Promise<void>;
}
