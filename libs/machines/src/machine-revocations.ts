import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { Clock } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import type { MachineRef, RevokeRequest, RevokeResult } from './machine';
import { MachineNotFoundError } from './machine-errors';
import { MachineRevocationHook } from './machine-revocation-hook';
import { MachinesRepository } from './machines.repository';

/**
 * An operator's revocation (POST /v1/machines/:ref/revoke): the transition to revoked and its audit
 * record `machine.revoked` in one transaction, so a revocation never lacks its record and a failed
 * append leaves the machine as it was; the hook ends what hangs on the machine elsewhere (its node
 * credential) in the same transaction, so no request authenticates after the revoke commits. A
 * repeated revoke changes and records nothing (`changed: false`).
 */
@Injectable()
export class MachineRevocations {
  constructor(
    private readonly dataSource: DataSource,
    private readonly machines: MachinesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly hook: MachineRevocationHook,
  ) {}

  revoke(ref: MachineRef, request: RevokeRequest): Promise<RevokeResult> {
    return this.dataSource.transaction(async (manager) => {
      const found = await this.machines.findByRef(ref, manager);
      if (found === undefined) {
        throw new MachineNotFoundError('id' in ref ? ref.id : ref.serial);
      }
      const at = this.clock.now();
      const result = await this.machines.revoke(found.id, request, at, manager);
      if (result.changed) {
        await this.hook.revoked(found.id, at, manager);
        await this.audit.append(
          {
            actor: request.actor,
            action: 'machine.revoked',
            subject: `machine:${found.id}`,
            outcome: 'success',
            details: { serial: found.serial, ekPubHash: found.ekPubHash, from: result.from ?? found.state, reason: request.reason.trim() },
          },
          manager,
        );
      }
      return result;
    });
  }
}
