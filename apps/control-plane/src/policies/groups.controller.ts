import { Controller, Get, Param } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { GroupDetail, GroupSummary } from '@rackseal/api-contracts';
import { PolicyGroups } from '@rackseal/attestation';
import { RequireScope } from '../auth/auth.decorators';
import { GroupDetailDto, GroupSummaryDto } from './groups.dto';
import { GROUP_PARAM_DESCRIPTION } from './policy.dto';

/**
 * The machine groups (issue 16, the dashboard's groups view): each with its machines per state and
 * failing, its PCR policy's shape and its attestation interval; one group with its failing machines
 * set against its allowed sets. Group configuration like the policy: scope `policy:read`.
 */
@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/groups')
export class GroupsController {
  constructor(private readonly groups: PolicyGroups) {}

  @Get()
  @RequireScope('policy:read')
  @ApiOkResponse({ type: GroupSummaryDto, isArray: true, description: 'every group of a machine, a policy or an interval of its own, by name' })
  list(): Promise<GroupSummary[]> {
    return this.groups.list();
  }

  @Get(':group')
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupDetailDto })
  @ApiBadRequestResponse({ description: 'not a group name (policy.invalid-group)' })
  @ApiNotFoundResponse({ description: 'no machine is in the group and it has no policy or interval (policy.group-not-found)' })
  show(@Param('group') group: string): Promise<GroupDetail<Date>> {
    return this.groups.show(group);
  }
}
