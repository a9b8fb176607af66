import { type DynamicModule, Global, Module } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from './rackseal-config';

/** Makes the boot-time validated config injectable everywhere as RACKSEAL_CONFIG. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: RacksealConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: RACKSEAL_CONFIG, useValue: config }],
      exports: [RACKSEAL_CONFIG],
    };
  }
}
