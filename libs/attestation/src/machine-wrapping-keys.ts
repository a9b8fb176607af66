import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AttestationRepository } from './attestation.repository';
import { CertifiedKeysRepository } from './certified-keys.repository';

/** The public keys a secret can be wrapped to on one machine, as its current attestation proved them. */
export interface WrappingKeys {
  /** The EK's TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) of the registration behind the live node credential; undefined without one. */
  readonly ekPublic?: Buffer;
  /** The live certified decrypt key's TPMT_PUBLIC (Part 2 §12.2.4) as certified (TPM2_Certify); undefined without one. */
  readonly certifiedKeyPublic?: Buffer;
}

/**
 * Reads a machine's wrapping keys for the deliveries (libs/deliveries) from this library's tables:
 * the EK public of its current attestation and its live certified key.
 */
@Injectable()
export class MachineWrappingKeys {
  constructor(
    private readonly registrations: AttestationRepository,
    private readonly keys: CertifiedKeysRepository,
  ) {}

  /**
   * Which of these machines have what a binding needs: a live certified key for `certified-key`, the
   * EK of a current attestation (a live node credential) for `pcr-sealed`.
   */
  async ready(machineIds: readonly string[], binding: 'certified-key' | 'pcr-sealed', manager: EntityManager): Promise<Set<string>> {
    if (machineIds.length === 0) {
      return new Set();
    }
    const credentialed = await this.registrations.machinesWithLiveCredential(machineIds, manager);
    if (binding === 'pcr-sealed') {
      return credentialed;
    }
    const keyed = await this.keys.machinesWithLiveKey(machineIds, manager);
    return new Set([...keyed].filter((id) => credentialed.has(id)));
  }

  async of(machineId: string, manager: EntityManager): Promise<WrappingKeys> {
    const ekPublic = await this.registrations.currentEkPublic(machineId, manager);
    const live = await this.keys.liveKey(machineId, manager);
    return {
      ...(ekPublic === undefined ? {} : { ekPublic }),
      ...(live === undefined ? {} : { certifiedKeyPublic: Buffer.from(live.publicArea, 'base64') }),
    };
  }
}
