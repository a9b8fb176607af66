import { Controller, Get, Param } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { GroupApprovals } from '@rackseal/api-contracts';
import { PcrApprovals } from '@rackseal/attestation';
import { RequireScope } from '../auth/auth.decorators';
import { GroupApprovalsDto } from './approvals.dto';
import { GROUP_PARAM_DESCRIPTION } from './policy.dto';

/**
 * A machine group's signed PCR approvals (issue 13 item 5): what GET /node/v1/approvals answers its
 * machines, with when each was signed. Signed by the policy changes themselves (policy set, promote,
 * remove), so reading is all there is: scope `policy:read`, like the policy.
 */
@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/groups/:group/approvals')
export class GroupApprovalsController {
  constructor(private readonly approvals: PcrApprovals) {}

  @Get()
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupApprovalsDto, description: 'the signing key, the group\'s current epoch and policyRef, its approvals; a group without a policy has none' })
  @ApiBadRequestResponse({ description: 'not a group name (approval.invalid-group)' })
  show(@Param('group') group: string): Promise<GroupApprovals<Date>> {
    return this.approvals.show(group);
  }
}
