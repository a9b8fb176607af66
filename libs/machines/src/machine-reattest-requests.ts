import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { Clock } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import type { MachineRef } from './machine';
import { MachineNotFoundError, MachineTransitionError } from './machine-errors';
import { MachinesRepository } from './machines.repository';

/** What a re-attestation request recorded: the pending request's time (the first, when one was already pending). */
export interface ReattestRequestResult {
  readonly machineId: string;
  readonly serial: string;
  readonly requestedAt: Date;
}

/**
 * An operator's request that a machine attest again now (POST /v1/machines/:ref/reattest), rather
 * than when its interval runs out: the flag the agent reads from GET /node/v1/self, and its audit
 * record `machine.reattest-requested`, in one transaction. A revoked machine never attests again:
 * refused as the transition it would need (revoked → attesting). A request while one is pending
 * keeps the first and writes no second record.
 */
@Injectable()
export class MachineReattestRequests {
  constructor(
    private readonly dataSource: DataSource,
    private readonly machines: MachinesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  request(ref: MachineRef, actor: string): Promise<ReattestRequestResult> {
    return this.dataSource.transaction(async (manager) => {
      const found = await this.machines.findByRef(ref, manager);
      if (found === undefined) {
        throw new MachineNotFoundError('id' in ref ? ref.id : ref.serial);
      }
      if (found.state === 'revoked') {
        throw new MachineTransitionError('revoked', 'attesting');
      }
      const at = this.clock.now();
      const requestedAt = (await this.machines.requestReattest(found.id, at, manager))!;
      if (requestedAt.getTime() === at.getTime()) {
        await this.audit.append(
          { actor, action: 'machine.reattest-requested', subject: `machine:${found.id}`, outcome: 'success', details: { serial: found.serial, state: found.state } },
          manager,
        );
      }
      return { machineId: found.id, serial: found.serial, requestedAt };
    });
  }
}
