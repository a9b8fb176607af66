import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { MachineRevocationFollowUp } from '@rackseal/machines';
import { Secrets, SecretsRepository } from '@rackseal/secrets';
import type { EntityManager } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';

/** Who rotates and cancels on a machine's revocation (the operator's revoke is `machine.revoked`'s actor). */
export const REVOCATION_ACTOR = 'system:revocation';

/**
 * What a machine's revocation ends in libs/deliveries (issue 14 item 7), in the revoke's transaction
 * (libs/machines' MachineRevocationFollowUp, called after the node credential died):
 *
 * - every live delivery of the machine (pending, ready, failed) is cancelled, its envelope dropped;
 * - every shared secret it held — an `opaque` secret targeted at a group, of which it had a delivery
 *   acked or ready — gets a new version for the machines that remain: generated again when its
 *   latest value was generated (`secret.rotated`, trigger `machine-revoked`, delivered to the others
 *   by the version hook); an uploaded value cannot be made up by the server, so the secret is flagged
 *   `rotationRequired` for the operator (`secret.rotation-required`), and the revocation is never
 *   refused for it: cutting a machine off must not wait on anyone's upload.
 *
 * One `delivery.cancelled` record for the cancellations; none when nothing was live.
 */
@Injectable()
export class RevokedMachineDeliveries extends MachineRevocationFollowUp {
  constructor(
    private readonly deliveries: DeliveriesRepository,
    private readonly secretsRepository: SecretsRepository,
    private readonly secrets: Secrets,
    private readonly audit: AuditLog,
  ) {
    super();
  }

  async revoked(machineId: string, at: Date, m: EntityManager): Promise<void> {
    const held = await this.deliveries.heldSharedSecrets(machineId, m);
    const cancelled = await this.deliveries.cancelForMachine(machineId, at, m);
    if (cancelled.length > 0) {
      await this.audit.append(
        { actor: REVOCATION_ACTOR, action: 'delivery.cancelled', subject: `machine:${machineId}`, outcome: 'success', details: { reason: 'machine revoked', machineId, count: cancelled.length, deliveryIds: cancelled } },
        m,
      );
    }
    for (const secretId of held) {
      // Locked like an operator's rotate, so the two make consecutive versions.
      const secret = (await this.secretsRepository.findById(secretId, m, true))!;
      const [latest] = await this.secretsRepository.versionsOf(secretId, m);
      if (latest?.valueOrigin === 'generated') {
        await this.secrets.rotateWithin(secret, { trigger: 'machine-revoked', actor: REVOCATION_ACTOR, details: { revokedMachineId: machineId } }, m);
        continue;
      }
      const reason = `machine ${machineId} was revoked holding this uploaded value; upload a new one (rackseal secrets rotate ${secret.name} --value-file FILE)`;
      await this.secretsRepository.requireRotation(secretId, reason, at, m);
      await this.audit.append(
        {
          actor: REVOCATION_ACTOR,
          action: 'secret.rotation-required',
          subject: `secret:${secret.name}`,
          outcome: 'success',
          details: { name: secret.name, id: secret.id, version: latest?.version ?? 0, revokedMachineId: machineId, origin: latest?.valueOrigin ?? 'unknown' },
        },
        m,
      );
    }
  }
}
