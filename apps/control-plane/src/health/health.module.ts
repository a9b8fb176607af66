import { Module } from '@nestjs/common';
import { MachinesRepository } from '@rackseal/machines';
import { DatabasePing } from '@rackseal/persistence';
import { HealthController } from './health.controller';
import { MetricsController } from './metrics.controller';
import { ReadinessProbe } from './readiness-probe';

@Module({ controllers: [HealthController, MetricsController], providers: [ReadinessProbe, DatabasePing, MachinesRepository] })
export class HealthModule {}
