import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { GroupRuntimePolicy, RuntimePolicyRemoval } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { RuntimePolicies } from '@rackseal/attestation';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { GROUP_PARAM_DESCRIPTION } from './policy.dto';
import { GroupRuntimePolicyDto, RuntimePolicyFromMachineDto, RuntimePolicyRemovalDto, SetRuntimePolicyDto } from './runtime-policy.dto';

/**
 * Each machine group's runtime policy (issue 17): a Keylime runtime policy the IMA measurement list
 * of every re-attestation is judged by. Reading needs `policy:read`, changing `policy:write`; every
 * change is audited with the policy's SHA-256.
 */
@ApiTags('policies')
@ApiBearerAuth()
@Controller('v1/groups/:group/runtime-policy')
export class RuntimePolicyController {
  constructor(private readonly policies: RuntimePolicies) {}

  @Get()
  @RequireScope('policy:read')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupRuntimePolicyDto })
  @ApiBadRequestResponse({ description: 'not a group name (policy.invalid-group)' })
  @ApiNotFoundResponse({ description: 'the group has no runtime policy (policy.not-found)' })
  show(@Param('group') group: string): Promise<GroupRuntimePolicy<Date>> {
    return this.policies.show(group);
  }

  /** Sets the group's runtime policy, replacing any previous one; from the next attestation on, its machines send their IMA list and quote PCR 10. */
  @Put()
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupRuntimePolicyDto })
  @ApiBadRequestResponse({ description: 'not a group name, or a policy libs/ima refuses (policy.invalid, naming the field); nothing written' })
  set(@Param('group') group: string, @Body() body: SetRuntimePolicyDto, @Principal() principal: TokenPrincipal): Promise<GroupRuntimePolicy<Date>> {
    return this.policies.set(group, body, actorOf(principal));
  }

  /** Sets the group's runtime policy from a canary's measurements verified this boot (an allowlist of every file and digest its quotes covered). */
  @Post('from-machine')
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: GroupRuntimePolicyDto })
  @ApiBadRequestResponse({ description: 'not a group name or machine reference, or an exclude libs/ima refuses (policy.invalid)' })
  @ApiNotFoundResponse({ description: 'no such machine (machine.not-found)' })
  @ApiConflictResponse({ description: 'the machine is revoked, not of the group, has no verified IMA measurements this boot, or more than the server keeps (audited, outcome refused)' })
  fromMachine(@Param('group') group: string, @Body() body: RuntimePolicyFromMachineDto, @Principal() principal: TokenPrincipal): Promise<GroupRuntimePolicy<Date>> {
    return this.policies.fromMachine(group, body, actorOf(principal));
  }

  @Delete()
  @HttpCode(200)
  @RequireScope('policy:write')
  @ApiParam({ name: 'group', description: GROUP_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: RuntimePolicyRemovalDto })
  @ApiBadRequestResponse({ description: 'not a group name' })
  @ApiNotFoundResponse({ description: 'the group has no runtime policy (policy.not-found)' })
  remove(@Param('group') group: string, @Principal() principal: TokenPrincipal): Promise<RuntimePolicyRemoval> {
    return this.policies.remove(group, actorOf(principal));
  }
}
