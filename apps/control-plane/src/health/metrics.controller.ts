import { Controller, Get, NotFoundException, Res } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { MetricsListenerHost, MetricsRegistry } from '@rackseal/metrics';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';

/**
 * Prometheus text exposition (format 0.0.4) of this process's registry (docs/guide/observability.md).
 * Public, as health is: counts, ages and route templates only, nothing that identifies a machine or
 * an operator. With METRICS_PORT set the metrics are served by that listener only, and this route
 * answers 404, so the API port the machines' network reaches does not show them
 * (docs/decisions.md, "Observability").
 */
@ApiTags('health')
@Public()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly listener: MetricsListenerHost,
  ) {}

  @Get()
  @ApiOkResponse({ description: 'Prometheus text format', type: String })
  @ApiNotFoundResponse({ description: 'route.not-found: METRICS_PORT is set, the metrics are served there' })
  async serve(@Res({ passthrough: true }) response: Response): Promise<string> {
    if (this.listener.enabled) {
      // Worded as the router's own miss, so the filter answers route.not-found like any unknown path.
      throw new NotFoundException('Cannot GET /metrics');
    }
    const text = await this.metrics.render();
    response.setHeader('Content-Type', this.metrics.contentType);
    return text;
  }
}
