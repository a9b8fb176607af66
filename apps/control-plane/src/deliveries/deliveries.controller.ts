import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { DEFAULT_PAGE_SIZE, type DeliveryView } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { Deliveries } from '@rackseal/deliveries';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { DeliveriesQueryDto, DeliveryViewDto } from './deliveries.dto';

/**
 * Deliveries for the operator (issue 14 item 1): the list, filtered by state, machine and secret, and
 * the retry of a failed one. No answer carries an envelope. Reading needs `secrets:read`, a retry
 * `secrets:write`.
 */
@ApiTags('deliveries')
@ApiBearerAuth()
@Controller('v1/deliveries')
export class DeliveriesController {
  constructor(private readonly deliveries: Deliveries) {}

  @Get()
  @RequireScope('secrets:read')
  @ApiOkResponse({ type: DeliveryViewDto, isArray: true, description: 'Ordered by id; page with ?after=<last id>. An unknown machine or secret answers an empty page.' })
  @ApiBadRequestResponse({ description: 'delivery.invalid: an unknown state, or an after that is not a delivery id' })
  list(@Query() query: DeliveriesQueryDto): Promise<DeliveryView<Date>[]> {
    return this.deliveries.list({ ...query, limit: query.limit ?? DEFAULT_PAGE_SIZE });
  }

  @Post(':id/retry')
  @HttpCode(200)
  @RequireScope('secrets:write')
  @ApiOkResponse({ type: DeliveryViewDto, description: 'the delivery, pending again in a new round; audited delivery.retried' })
  @ApiNotFoundResponse({ description: 'delivery.not-found' })
  @ApiConflictResponse({ description: 'delivery.not-failed: only a failed delivery is retried' })
  retry(@Param('id') id: string, @Principal() principal: TokenPrincipal): Promise<DeliveryView<Date>> {
    return this.deliveries.retry(id, actorOf(principal));
  }
}
