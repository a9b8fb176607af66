import { Injectable, Logger } from '@nestjs/common';
import { DomainError } from '@rackseal/api-contracts';
import { MachineWrappingKeys, PcrPoliciesRepository } from '@rackseal/attestation';
import { AuditLog } from '@rackseal/audit';
import { MachinesRepository } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { SecretMaterials, SecretsRepository } from '@rackseal/secrets';
import { DataSource, type EntityManager } from 'typeorm';
import { DeliveriesRepository, type StoredDelivery } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';
import { serialiseDeliveryPayload } from './delivery-payload';
import { DELIVERIES_SYSTEM_ACTOR } from './delivery-planner';
import { DeliveryGaveUpError, failureCodeOf } from './delivery-processor';
import { EnvelopeSealer } from './envelope-sealer';
import { cancelForRevokedMachine } from './revoked-machine-cancel';

export type PrewrapOutcome = 'prewrapped' | 'no-op' | 'cancelled';

/** Codes no further attempt can change: the inventory or the group would have to change first. */
const PERMANENT = new Set(['delivery.no-ek', 'delivery.no-policy', 'secret.machine-unfit', 'attestation.ek-mismatch']);

/**
 * The `delivery.prewrap` job's work (issue 14 item 6): the disk key of a machine that never attested
 * (SecretMaterials.materialForImported, made once per version and machine), sealed through the same
 * EnvelopeSealer as every delivery, `pcr-sealed`, to the EK of the machine's inventory certificate
 * — the sealer seals to the group's current approval epoch — and kept as `prewrapped` for the
 * operator's export. Safe to run twice or at once like `delivery.deliver`: only the conditional
 * `prewrap-pending → prewrapped` of this round writes, and only its winner audits. A revoked machine's
 * pre-wrap is cancelled; a machine that attested meanwhile has its pre-wrap turned into a delivery
 * already (a new round), so this round is a no-op.
 */
@Injectable()
export class PrewrapProcessor {
  private readonly logger = new Logger('PrewrapProcessor');

  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly machines: MachinesRepository,
    private readonly wrappingKeys: MachineWrappingKeys,
    private readonly policies: PcrPoliciesRepository,
    private readonly secrets: SecretsRepository,
    private readonly materials: SecretMaterials,
    private readonly sealer: EnvelopeSealer,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  async prewrap(deliveryId: string, generation: number, lastAttempt: boolean): Promise<PrewrapOutcome> {
    // Read and counted in one statement: undefined when it is not a pending pre-wrap of this round.
    const delivery = await this.deliveries.countAttempt(deliveryId, generation, this.clock.now(), 'prewrap-pending');
    if (delivery === undefined) {
      return 'no-op';
    }
    try {
      return await this.seal(delivery);
    } catch (error) {
      const code = failureCodeOf(error);
      if (lastAttempt || PERMANENT.has(code) || (error instanceof DomainError && (error.kind === 'invalid' || error.kind === 'not-found'))) {
        await this.dataSource.transaction(async (m) => {
          const row = await this.deliveries.markPrewrapFailed(delivery.id, delivery.generation, code, this.clock.now(), m);
          if (row !== undefined) {
            await this.record({ action: 'delivery.prewrap-failed' }, delivery, { code, attempts: row.attempts }, m, 'failure');
          }
        });
        throw new DeliveryGaveUpError(code);
      }
      await this.deliveries.recordError(deliveryId, generation, code, this.clock.now());
      this.logger.warn({ deliveryId, generation, code }, 'pre-wrap attempt failed; BullMQ retries it');
      throw error;
    }
  }

  private async seal(delivery: StoredDelivery): Promise<PrewrapOutcome> {
    const machine = await this.machines.findById(delivery.machineId);
    if (machine === undefined || machine.state === 'revoked') {
      return cancelForRevokedMachine(this.dataSource, this.deliveries, delivery.id, this.clock.now(), (m) => this.record({ action: 'delivery.cancelled' }, delivery, { reason: 'machine revoked' }, m));
    }
    if (machine.state !== 'imported' || machine.group === null) {
      // Attested (or attesting) meanwhile: its attestation turns the pre-wrap into a delivery.
      return 'no-op';
    }
    if ((await this.policies.get(machine.group)) === undefined) {
      throw new DeliveryError('delivery.no-policy', `group ${machine.group} has no PCR policy: nothing approves a boot state to seal machine ${machine.serial}'s disk key to`);
    }
    const ekPublic = await this.wrappingKeys.inventoryEkPublic(machine, this.dataSource.manager);
    if (ekPublic === undefined) {
      throw new DeliveryError('delivery.no-ek', `machine ${machine.serial} was imported with its ek_pub_hash only: a hash is no key to wrap to (import its EK certificate)`);
    }
    const version = await this.secrets.findVersion(delivery.versionId);
    const secret = await this.secrets.findById(delivery.secretId);
    if (version === undefined || secret === undefined) {
      throw new DeliveryError('delivery.not-found', `the secret version of pre-wrap ${delivery.id} is gone`);
    }
    const material = await this.dataSource.transaction((m) => this.materials.materialForImported(version.id, machine.id, m));
    const opened = this.materials.openMaterial(material);
    let payload: Buffer;
    try {
      payload = serialiseDeliveryPayload({ kind: secret.kind, name: secret.name, version: version.version, material: opened.reveal() });
    } finally {
      opened.reveal().fill(0);
    }
    let sealed;
    try {
      sealed = await this.sealer.seal({
        deliveryId: delivery.id,
        secretVersion: version.version,
        binding: 'pcr-sealed',
        machine: { id: machine.id, group: machine.group, ekPublic },
        payload,
      });
    } finally {
      payload.fill(0);
    }
    // Nobody acks a pre-wrap: the delivery it becomes at attestation is sealed and proven afresh.
    sealed.ackProof.fill(0);
    const done = await this.dataSource.transaction(async (m) => {
      const row = await this.deliveries.markPrewrapped(delivery.id, delivery.generation, sealed.envelope, this.clock.now(), m);
      if (row !== undefined) {
        await this.record({ action: 'delivery.prewrapped' }, delivery, { name: secret.name, version: version.version, serial: machine.serial, envelopeBytes: sealed.envelope.length }, m);
      }
      return row;
    });
    return done === undefined ? 'no-op' : 'prewrapped';
  }

  private async record({ action }: { action: string }, delivery: StoredDelivery, details: Record<string, string | number>, m: EntityManager, outcome: 'success' | 'failure' = 'success'): Promise<void> {
    await this.audit.append(
      {
        actor: DELIVERIES_SYSTEM_ACTOR,
        action,
        subject: `delivery:${delivery.id}`,
        outcome,
        details: { deliveryId: delivery.id, machineId: delivery.machineId, versionId: delivery.versionId, generation: delivery.generation, ...details },
      },
      m,
    );
  }
}
