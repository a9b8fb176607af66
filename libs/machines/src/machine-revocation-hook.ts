import type { EntityManager } from 'typeorm';

/**
 * What else a revocation ends, in its transaction: another library's rows tied to the machine (the
 * node credential, libs/attestation's table). An interface here, implemented there, because
 * libs/attestation depends on this library and each table has one owner (docs/architecture.md §9):
 * MachineRevocations calls it without knowing whose rows it touches.
 */
export abstract class MachineRevocationHook {
  /** Called once, when `machineId` has just been revoked (not for a repeated revoke), inside `manager`'s transaction. */
  abstract revoked(machineId: string, at: Date, manager: EntityManager): Promise<void>;
}

/**
 * Several hooks as one, called in order in the revocation's transaction: each library whose rows
 * hang on the machine (the node credential, the certified key) brings its own.
 */
export class MachineRevocationHooks extends MachineRevocationHook {
  constructor(private readonly hooks: readonly MachineRevocationHook[]) {
    super();
  }

  async revoked(machineId: string, at: Date, manager: EntityManager): Promise<void> {
    for (const hook of this.hooks) {
      await hook.revoked(machineId, at, manager);
    }
  }
}

/**
 * A revocation hook of a library that stands above libs/attestation (libs/deliveries: cancel the
 * machine's deliveries, rotate the shared secrets it held). libs/attestation composes the hooks of
 * the revocation (MachineRevocationHooks), so it takes this one as an optional injection and calls it
 * after its own: the credential is dead before anything is rotated for the machines that remain.
 */
export abstract class MachineRevocationFollowUp extends MachineRevocationHook {}
