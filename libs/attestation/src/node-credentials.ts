import type { SecretBytes } from '@rackseal/config';
import { type MasterKeyInput, openEnvelope } from '@rackseal/envelope';
import { type Machine, MachineRevocationHook, MachinesRepository } from '@rackseal/machines';
import type { DataSource, EntityManager } from 'typeorm';
import { AttestationRepository, nodeCredentialContext } from './attestation.repository';

/** A live node credential, opened, with the machine it belongs to as it is now. */
export interface LiveNodeCredential {
  readonly credentialId: string;
  readonly machine: Machine;
  /** The HMAC key, opened from its envelope. */
  readonly key: SecretBytes;
  /**
   * Whether the machine may call the node API now: `attested`, or `attesting` again after having
   * been `attested` (re-attestation in flight, or a re-attestation that failed on its cryptography,
   * which proves nothing against the machine: docs/decisions.md, "Node request authentication").
   * Quarantined, revoked, imported machines may not.
   */
  readonly mayCall: boolean;
}

/**
 * The node credentials as the node request guard reads them, and their end when the machine is
 * revoked (the MachineRevocationHook of libs/machines). Reads the live row on every call: a cache
 * would delay a revoke or a rotation by its lifetime.
 */
export class NodeCredentials extends MachineRevocationHook {
  constructor(
    private readonly dataSource: DataSource,
    private readonly credentials: AttestationRepository,
    private readonly machines: MachinesRepository,
    private readonly masterKey: MasterKeyInput,
  ) {
    super();
  }

  /** The live (not revoked, not rotated away) credential `credentialId`, or undefined. */
  async lookup(credentialId: string): Promise<LiveNodeCredential | undefined> {
    const manager = this.dataSource.manager;
    const row = await this.credentials.liveCredential(credentialId, manager);
    if (row === undefined) {
      return undefined;
    }
    const machine = await this.machines.findById(row.machineId, manager);
    if (machine === undefined) {
      return undefined;
    }
    const mayCall =
      machine.state === 'attested' || (machine.state === 'attesting' && (await this.credentials.latestPreviousState(machine.id, manager)) === 'attested');
    return { credentialId, machine, key: openEnvelope(this.masterKey, nodeCredentialContext(credentialId), row.keySealed), mayCall };
  }

  /** Revoke ends the machine's live credential, in the revocation's transaction. */
  async revoked(machineId: string, at: Date, manager: EntityManager): Promise<void> {
    await this.credentials.revokeCredentialsOf(machineId, at, manager);
  }
}
