import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { ekPubHash, marshalTpmtPublic } from '@rackseal/tpm2';
import { AttestationError } from './attestation-errors';
import { AttestationRepository } from './attestation.repository';
import { ekPublicFromCertificate, readEkCertificate } from './ek-input';
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
    private readonly machines: MachinesRepository,
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

  /**
   * The keys of each machine (one statement per table, for a batch of concurrent deliveries): the EK
   * public of its current attestation and its live certified key; machine id → its keys.
   */
  async ofMany(machineIds: readonly string[], manager: EntityManager): Promise<Map<string, WrappingKeys>> {
    const ekPublics = await this.registrations.currentEkPublics(machineIds, manager);
    const live = await this.keys.liveKeys(machineIds, manager);
    return new Map(
      machineIds.map((id) => {
        const ekPublic = ekPublics.get(id);
        const key = live.get(id);
        return [id, { ...(ekPublic === undefined ? {} : { ekPublic }), ...(key === undefined ? {} : { certifiedKeyPublic: Buffer.from(key.publicArea, 'base64') }) }];
      }),
    );
  }

  /**
   * The EK a machine that never attested can be wrapped to (a pre-wrap at import, issue 14 item 6):
   * the public key of the inventory's EK certificate, as a TPMT_PUBLIC under the default EK template
   * (TCG EK Credential Profile; the template enrollment assumes too), checked to hash to the
   * machine's ekPubHash. Undefined for a row imported with ek_pub_hash only: a hash names a key, it
   * is not one.
   */
  async inventoryEkPublic(machine: Machine, manager: EntityManager): Promise<Buffer | undefined> {
    const der = await this.machines.ekCertificateOf(machine.id, manager);
    if (der === undefined) {
      return undefined;
    }
    const ek = ekPublicFromCertificate(readEkCertificate(der));
    if (ekPubHash(ek) !== machine.ekPubHash) {
      throw new AttestationError('attestation.ek-mismatch', `machine ${machine.serial}: the inventory's EK certificate does not hash to its ekPubHash`);
    }
    return marshalTpmtPublic(ek);
  }
}
