import { Controller, Get, HttpCode, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { LivenessReport, ReadinessReport } from './dependency-status';
import { ReadinessProbe } from './readiness-probe';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(private readonly readiness: ReadinessProbe) {}

  /** The process answers HTTP; says nothing about dependencies (a restart would not fix those). */
  @Get('live')
  @HttpCode(200)
  @ApiOkResponse({ type: LivenessReport })
  live(): LivenessReport {
    return { status: 'alive' };
  }

  /**
   * Ready to serve: PostgreSQL and Redis both answer now. 503 takes the replica out of rotation;
   * `degraded` (still 200) says the audit sequencer is behind its maximum merge delay.
   */
  @Get('ready')
  @ApiOkResponse({ type: ReadinessReport })
  @ApiServiceUnavailableResponse({ type: ReadinessReport })
  async ready(@Res({ passthrough: true }) response: Response): Promise<ReadinessReport> {
    const report = await this.readiness.check();
    response.status(report.status === 'unavailable' ? 503 : 200);
    return report;
  }
}
