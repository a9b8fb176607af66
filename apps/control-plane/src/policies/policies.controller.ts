import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiBody, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { GroupPolicy, PolicyPromotion, PolicyRemoval, PolicySetChange, PromotePreview } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { PcrPolicies, PromotePreviews } from '@rackseal/attestation';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { PromotePreviewDto, PromotePreviewQueryDto } from './groups.dto';
import { ApprovePolicySetDto, GROUP_PARAM_DESCRIPTION, GroupPolicyDto, PcrPolicyDto, PolicyPromotionDto, PolicyRemovalDto, PolicySetChangeDto, PromotePolicyDto } from './policy.dto';

/**
 * Each machine group's PCR policy (issue 12 item 3, docs/architecture.md §4.3): show, set, promote a
 * canary machine's measured values into it, approve a stated set, withdraw a set, remove. Reading needs `policy:read`, changing
 * `policy:write` (which implies it); every change is audited with the policy's digest.
 */
@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/groups/:group/policy')
export class PoliciesController {
  constructor(
    private readonly policies: PcrPolicies,
    private readonly previews: PromotePreviews,
  ) {}

  @Get()
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupPolicyDto })
  @ApiBadRequestResponse({ description: 'not a group name (policy.invalid-group)' })
  @ApiNotFoundResponse({ description: 'the group has no policy (policy.not-found)' })
  show(@Param('group') group: string): Promise<GroupPolicy<Date>> {
    return this.policies.show(group);
  }

  /**
   * Sets the group's policy, replacing any previous one. The body is the policy JSON, validated as a
   * whole by libs/pcr-policy: a refusal (policy.invalid) names the field and writes nothing.
   */
  @Put()
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiBody({ type: PcrPolicyDto })
  @ApiOkResponse({ type: GroupPolicyDto })
  @ApiBadRequestResponse({ description: 'not a group name, or a policy refused (policy.invalid, naming the field); nothing written' })
  // `unknown`: parsePcrPolicy is the validation (unknown fields refused, hex normalised), not a DTO.
  set(@Param('group') group: string, @Body() body: unknown, @Principal() principal: TokenPrincipal): Promise<GroupPolicy<Date>> {
    return this.policies.set(group, body, actorOf(principal));
  }

  /**
   * Adds the set `label` (or replaces it) with the canary machine's latest verified PCR values and
   * event log; creates the group's policy when it has none.
   */
  @Post('promote')
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: PolicyPromotionDto })
  @ApiBadRequestResponse({ description: 'not a group name, a machine reference or a label' })
  @ApiNotFoundResponse({ description: 'no such machine (machine.not-found)' })
  @ApiConflictResponse({
    description:
      'the machine is revoked, not of the group, has no verified quote yet, or its evidence is of another bank or lacks a PCR of the policy; or mode/bank/pcrs differ from the existing policy (audited, outcome refused)',
  })
  promote(@Param('group') group: string, @Body() body: PromotePolicyDto, @Principal() principal: TokenPrincipal): Promise<PolicyPromotion<Date>> {
    return this.policies.promote(group, body, actorOf(principal));
  }

  /**
   * What promoting the machine would change, without changing it (the dashboard's promote dialog):
   * the set it would approve, the PCRs that differ from each allowed set, and how many failing
   * machines of the group have exactly these values. Refused as the promotion would be, not audited
   * (a read).
   */
  @Get('promote-preview')
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: PromotePreviewDto })
  @ApiBadRequestResponse({ description: 'not a group name or a machine reference' })
  @ApiNotFoundResponse({ description: 'no such group (policy.group-not-found) or machine (machine.not-found)' })
  @ApiConflictResponse({ description: 'the machine is revoked, not of the group, has no verified quote yet, or its evidence is of another bank or lacks a PCR of the policy (the promotion\'s codes)' })
  preview(@Param('group') group: string, @Query() query: PromotePreviewQueryDto): Promise<PromotePreview<Date>> {
    return this.previews.preview(group, query.machine);
  }

  /**
   * Approves one more PCR state from stated values (a set `label`, replacing one of that label): its
   * approval is signed in the group's current epoch, so sealed envelopes open in it without a re-wrap.
   */
  @Post('sets')
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: PolicySetChangeDto })
  @ApiBadRequestResponse({ description: 'not a group name or label, or values refused with the policy (policy.invalid, naming the field); nothing written' })
  @ApiNotFoundResponse({ description: 'the group has no policy (policy.not-found)' })
  approve(@Param('group') group: string, @Body() body: ApprovePolicySetDto, @Principal() principal: TokenPrincipal): Promise<PolicySetChange<Date>> {
    return this.policies.approve(group, body, actorOf(principal));
  }

  /** Withdraws the set `label`: its approval is no longer served and the group's approval epoch moves on. */
  @Delete('sets/:label')
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiParam({ name: 'label', description: 'the set\'s label' })
  @ApiOkResponse({ type: PolicySetChangeDto })
  @ApiBadRequestResponse({ description: 'not a group name or label, no set of that label, or the policy\'s only set (policy.invalid); nothing written' })
  @ApiNotFoundResponse({ description: 'the group has no policy (policy.not-found)' })
  withdraw(@Param('group') group: string, @Param('label') label: string, @Principal() principal: TokenPrincipal): Promise<PolicySetChange<Date>> {
    return this.policies.withdraw(group, label, actorOf(principal));
  }

  /** Removes the group's policy: its machines are quarantined (attestation.no-policy) at their next attestation until one is set. */
  @Delete()
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: PolicyRemovalDto })
  @ApiBadRequestResponse({ description: 'not a group name' })
  @ApiNotFoundResponse({ description: 'the group has no policy (policy.not-found)' })
  remove(@Param('group') group: string, @Principal() principal: TokenPrincipal): Promise<PolicyRemoval> {
    return this.policies.remove(group, actorOf(principal));
  }
}
