import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { PcrPoliciesRepository } from '@rackseal/attestation';
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
 * for a group without its own: rackseal-agent run without --interval follows it), while an operator's request
 * (POST /v1/machines/:ref/reattest) is pending, or — the one route a quarantined machine may call —
 * when its group's PCR policy changed after its quarantine, so a `policy promote` that approves the
 * state it was quarantined for brings it back at its agent's next question rather than an interval later.
 */
@ApiTags('node: self')
@NodeAuthenticated({ quarantinedToo: true })
@Controller(nodeApiPath(SELF_ROUTE))
export class SelfController {
  constructor(
    private readonly clock: Clock,
    private readonly machines: MachinesRepository,
    private readonly intervals: GroupAttestationIntervals,
    private readonly policies: PcrPoliciesRepository,
  ) {}

  @Get()
  @ApiOkResponse({ type: NodeSelfResponseDto, description: 'the calling machine' })
  async self(@NodeCallerOf() caller: NodeCaller): Promise<NodeSelfResponse> {
    const m = caller.machine;
    const [requested, intervalMs] = await Promise.all([this.machines.reattestRequestedAt(m.id), this.intervals.intervalMsFor(m.group)]);
    const due = m.lastAttestedAt === null ? null : new Date(m.lastAttestedAt.getTime() + intervalMs);
    // An operator's request is pending until a successful attestation or a quarantine (libs/machines transition).
    const policyChangedSinceQuarantine = m.state === 'quarantined' && (await this.policyChangedSince(m.group, m.lastFailure?.at ?? null));
    return {
      machineId: m.id,
      serial: m.serial,
      group: m.group,
      // The guard lets only these through (NodeCredentials.mayCall, and quarantined for this route).
      state: m.state as NodeSelfResponse['state'],
      lastAttestedAt: m.lastAttestedAt?.toISOString() ?? null,
      nextAttestationDue: due?.toISOString() ?? null,
      // A quarantined machine is not asked again by its interval (its last attestation stays where it
      // was, so it would be asked at every question): only an operator's request or a policy change.
      reattest: requested !== null || (m.state === 'quarantined' ? policyChangedSinceQuarantine : due === null || due.getTime() <= this.clock.now().getTime()),
    };
  }

  /** Whether the group's stored PCR policy was set or promoted after `since` (the quarantine). */
  private async policyChangedSince(group: string | null, since: Date | null): Promise<boolean> {
    if (group === null || since === null) {
      return false;
    }
    const stored = await this.policies.get(group);
    return stored !== undefined && stored.updatedAt.getTime() > since.getTime();
  }
}
