import type { DynamicModule, Type } from '@nestjs/common';
import { AuditModule } from '@rackseal/audit';
import { ConfigModule, type RacksealConfig } from '@rackseal/config';
import { JobsModule } from '@rackseal/jobs';
import { LoggingModule } from '@rackseal/logging';
import { MasterKeysModule } from '@rackseal/master-keys';
import { MetricsModule } from '@rackseal/metrics';
import { PersistenceModule } from '@rackseal/persistence';
import { PlatformModule } from '@rackseal/platform';

export type ProcessName = 'control-plane' | 'worker';

/**
 * The one list of modules every rackseal server process stands on. The control plane adds HTTP
 * controllers on top, the worker adds queue consumers; neither re-declares shared providers.
 */
export function sharedImports(config: RacksealConfig, process: ProcessName): (DynamicModule | Type)[] {
  return [
    ConfigModule.forRoot(config),
    LoggingModule.forRoot(config, process),
    MetricsModule,
    PlatformModule,
    PersistenceModule.forRoot(config, `rackseal-${process}`),
    MasterKeysModule,
    AuditModule,
    JobsModule,
  ];
}
