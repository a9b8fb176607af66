import type { SecretBytes } from '@rackseal/config';
import { type MasterKeyInput, openEnvelope } from '@rackseal/envelope';
import { type Machine, MachineRevocationHook, MachinesRepository } from '@rackseal/machines';
import { MicroBatcher } from '@rackseal/platform';
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

/** Credentials looked up by one pair of statements at most, and pairs under way at once (each holds a pool connection). */
const LOOKUP_BATCH = { maxBatch: 256, maxInFlight: 2 };

/**
 * The node credentials as the node request guard reads them, and their end when the machine is
 * revoked (the MachineRevocationHook of libs/machines). Reads the live row on every call: a cache
 * would delay a revoke or a rotation by its lifetime. The lookups that arrive together are read by
 * one statement for the credentials and one for their machines (a MicroBatcher; docs/decisions.md,
 * "Delivery throughput"): each request still reads the rows as they are after it arrived.
 */
export class NodeCredentials extends MachineRevocationHook {
  readonly #batcher = new MicroBatcher<string, PromiseSettledResult<LiveNodeCredential | undefined>>((ids) => this.lookupMany(ids), LOOKUP_BATCH);

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
    // A failure of one credential (its envelope does not open) fails its own request only.
    const settled = await this.#batcher.submit(credentialId);
    if (settled.status === 'rejected') {
      throw settled.reason;
    }
    return settled.value;
  }

  private async lookupMany(credentialIds: readonly string[]): Promise<PromiseSettledResult<LiveNodeCredential | undefined>[]> {
    const manager = this.dataSource.manager;
    const rows = new Map((await this.credentials.liveCredentials(credentialIds, manager)).map((r) => [r.credentialId, r]));
    const machines = new Map((await this.machines.findByIds([...rows.values()].map((r) => r.machineId), manager)).map((m) => [m.id, m]));
    return Promise.allSettled(
      credentialIds.map(async (credentialId) => {
        const row = rows.get(credentialId);
        const machine = row === undefined ? undefined : machines.get(row.machineId);
        if (row === undefined || machine === undefined) {
          return undefined;
        }
        const mayCall =
          machine.state === 'attested' || (machine.state === 'attesting' && (await this.credentials.latestPreviousState(machine.id, manager)) === 'attested');
        return { credentialId, machine, key: openEnvelope(this.masterKey, nodeCredentialContext(credentialId), row.keySealed), mayCall };
      }),
    );
  }

  /** Revoke ends the machine's live credential, in the revocation's transaction. */
  async revoked(machineId: string, at: Date, manager: EntityManager): Promise<void> {
    await this.credentials.revokeCredentialsOf(machineId, at, manager);
  }
}
