import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { GroupAttestationIntervals, MachinesRepository } from '@rackseal/machines';
import { type NodeSelfResponse, nodeApiPath, SELF_ROUTE } from '@rackseal/node-api-contracts';
import { Clock } from '@rackseal/platform';
import { NodeAuthenticated, NodeCallerOf } from '../auth/auth.decorators';
import type { NodeCaller } from '../auth/node-request.guard';
import { NodeSelfResponseDto } from './self.dto';

/**
 * The machine's view of itself, what `rackseal-agent run` polls (issue 12 item 5): which machine
 * its credential names, its state, and when it must attest again. `reattest` is true once the next
 * attestation is due (its group's attestation interval after the last, MACHINE_ATTESTATION_INTERVAL_MS
 * for a group without its own: rackseal-agent run without --interval follows it) or while an operator's request
 * (POST /v1/machines/:ref/reattest) is pending.
 */
@ApiTags('node: self')
@NodeAuthenticated()
@Controller(nodeApiPath(SELF_ROUTE))
export class SelfController {
  constructor(
    private readonly clock: Clock,
    private readonly machines: MachinesRepository,
    private readonly intervals: GroupAttestationIntervals,
  ) {}

  @Get()
  @ApiOkResponse({ type: NodeSelfResponseDto, description: 'the calling machine' })
  async self(@NodeCallerOf() caller: NodeCaller): Promise<NodeSelfResponse> {
    const m = caller.machine;
    const [requested, intervalMs] = await Promise.all([this.machines.reattestRequestedAt(m.id), this.intervals.intervalMsFor(m.group)]);
    const due = m.lastAttestedAt === null ? null : new Date(m.lastAttestedAt.getTime() + intervalMs);
    return {
      machineId: m.id,
      serial: m.serial,
      group: m.group,
      // The guard lets only these two through (NodeCredentials.mayCall).
      state: m.state as NodeSelfResponse['state'],
      lastAttestedAt: m.lastAttestedAt?.toISOString() ?? null,
      nextAttestationDue: due?.toISOString() ?? null,
      reattest: requested !== null || due === null || due.getTime() <= this.clock.now().getTime(),
    };
  }
}
