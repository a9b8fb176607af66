import { Controller, Get, Param } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { PrewrapExport } from '@rackseal/deliveries';
import type { MachinePrewraps } from '@rackseal/node-api-contracts';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { MACHINE_REF_DESCRIPTION } from '../machines/machines.dto';
import { MachinePrewrapsDto } from './prewrap.dto';

/**
 * A machine's pre-wrapped disk keys (issue 14 item 6), exported for its provisioning: `secrets:write`
 * — envelopes only, but what they carry is a disk key, and whoever provisions machines creates their
 * secrets anyway. Audited `delivery.prewrap-exported`, refusals too.
 */
@ApiTags('deliveries')
@ApiBearerAuth()
@Controller('v1/machines')
export class PrewrapController {
  constructor(private readonly prewraps: PrewrapExport) {}

  @Get(':ref/prewrapped')
  @RequireScope('secrets:write')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: MachinePrewrapsDto, description: 'one provisioning file per pre-wrapped disk secret (what rackseal-agent unlock --prewrapped formats a blank disk from at first boot)' })
  @ApiBadRequestResponse({ description: 'machine.invalid-ref' })
  @ApiNotFoundResponse({ description: 'machine.not-found' })
  @ApiConflictResponse({ description: 'delivery.no-prewrap (revoked, attested, a group without a PCR policy, a row without an EK certificate, no disk secret) or delivery.prewrap-pending (not sealed yet: ask again)' })
  export(@Param('ref') ref: string, @Principal() principal: TokenPrincipal): Promise<MachinePrewraps> {
    return this.prewraps.export(ref, actorOf(principal));
  }
}
