import { type DynamicModule, Module } from '@nestjs/common';
import type { RacksealConfig } from '@rackseal/config';
import { sharedImports } from '@rackseal/runtime';
import { HardeningModule } from './hardening/hardening.module';
import { HealthModule } from './health/health.module';
import { OperatorApiModule } from './operator-api.module';

/** Root module of the HTTP process: the shared modules plus controllers. No queue consumers here. */
@Module({})
export class ControlPlaneModule {
  static forRoot(config: RacksealConfig): DynamicModule {
    return {
      module: ControlPlaneModule,
      imports: [...sharedImports(config, 'control-plane'), HardeningModule, HealthModule, OperatorApiModule],
    };
  }
}
