import { Body, Controller, Delete, Get, HttpCode, Param, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { GroupAttestationInterval, GroupAttestationIntervalRemoval } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { GroupAttestationIntervals } from '@rackseal/machines';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { GroupAttestationIntervalDto, GroupAttestationIntervalRemovalDto, SetAttestationIntervalDto } from './interval.dto';
import { GROUP_PARAM_DESCRIPTION } from './policy.dto';

/**
 * A machine group's attestation interval (issue 12 item 7), beside its PCR policy: how often its
 * machines must attest, what GET /node/v1/self's nextAttestationDue and the liveness checks
 * (GET /v1/machines?overdue=true, /metrics) hold them to. Group configuration like the policy, so
 * the policy scopes: `policy:read` to read, `policy:write` to change (audited `policy.interval-set`,
 * `policy.interval-removed`). A group without its own interval has the fleet default.
 */
@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/groups/:group/interval')
export class GroupIntervalController {
  constructor(private readonly intervals: GroupAttestationIntervals) {}

  /** The interval in force for the group: its own, or the fleet default (MACHINE_ATTESTATION_INTERVAL_MS); always 200 for a group name. */
  @Get()
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupAttestationIntervalDto })
  @ApiBadRequestResponse({ description: 'not a group name (machine.invalid-group)' })
  show(@Param('group') group: string): Promise<GroupAttestationInterval<Date>> {
    return this.intervals.show(group);
  }

  @Put()
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupAttestationIntervalDto })
  @ApiBadRequestResponse({ description: 'not a group name (machine.invalid-group), not an integer (request.invalid), or outside 10 s – 31 days (machine.invalid-interval); nothing written' })
  set(@Param('group') group: string, @Body() body: SetAttestationIntervalDto, @Principal() principal: TokenPrincipal): Promise<GroupAttestationInterval<Date>> {
    return this.intervals.set(group, body.attestationIntervalSeconds, actorOf(principal));
  }

  /** Back to the fleet default. A group without its own interval: 200 `changed: false`, nothing written. */
  @Delete()
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupAttestationIntervalRemovalDto })
  @ApiBadRequestResponse({ description: 'not a group name (machine.invalid-group)' })
  remove(@Param('group') group: string, @Principal() principal: TokenPrincipal): Promise<GroupAttestationIntervalRemoval<Date>> {
    return this.intervals.remove(group, actorOf(principal));
  }
}
