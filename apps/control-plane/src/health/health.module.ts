import { Module } from '@nestjs/common';
import { DeliveriesRepository } from '@rackseal/deliveries';
import { MachinesRepository } from '@rackseal/machines';
import { DatabasePing } from '@rackseal/persistence';
import { ControlPlaneMetrics } from './control-plane-metrics';
import { HealthController } from './health.controller';
import { MetricsController } from './metrics.controller';
import { ReadinessProbe } from './readiness-probe';

@Module({
  controllers: [HealthController, MetricsController],
  providers: [ReadinessProbe, DatabasePing, MachinesRepository, DeliveriesRepository, ControlPlaneMetrics],
})
export class HealthModule {}
