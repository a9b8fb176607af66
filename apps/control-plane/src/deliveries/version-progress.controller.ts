import { Controller, Get, Param } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { VersionDeliveryProgress } from '@rackseal/api-contracts';
import { Deliveries } from '@rackseal/deliveries';
import { RequireScope } from '../auth/auth.decorators';
import { VersionDeliveryProgressDto } from './deliveries.dto';

/** A secret version's rollout (issue 14 item 5): its deliveries counted by state, what `rackseal secrets rotate` waits on. */
@ApiTags('deliveries')
@ApiBearerAuth()
@Controller('v1/secrets/:name/versions/:version/deliveries')
export class VersionProgressController {
  constructor(private readonly deliveries: Deliveries) {}

  @Get()
  @RequireScope('secrets:read')
  @ApiOkResponse({ type: VersionDeliveryProgressDto })
  @ApiBadRequestResponse({ description: 'secret.invalid-name, secret.invalid (version not a whole number from 1)' })
  @ApiNotFoundResponse({ description: 'secret.not-found: no such secret or version' })
  progress(@Param('name') name: string, @Param('version') version: string): Promise<VersionDeliveryProgress<Date>> {
    return this.deliveries.progress(name, version);
  }
}
