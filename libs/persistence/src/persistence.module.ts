import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { RacksealConfig } from '@rackseal/config';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { dataSourceOptions } from './data-source-options';
import { runMigrationsUnderLock } from './migration-runner';

/**
 * TypeORM from the validated config. When MIGRATIONS_AT_BOOT is on, pending migrations run inside
 * the DataSource factory, before any provider that needs the schema is created.
 */
@Module({})
export class PersistenceModule {
  static forRoot(config: RacksealConfig, applicationName: string): DynamicModule {
    const logger = new Logger('Persistence');
    return {
      module: PersistenceModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => ({
            ...dataSourceOptions(config, applicationName),
            autoLoadEntities: true,
            retryAttempts: 5,
            retryDelay: 2000,
          }),
          dataSourceFactory: async (options?: DataSourceOptions) => {
            const dataSource = await new DataSource(options!).initialize();
            if (config.database.migrationsAtBoot) {
              const run = await runMigrationsUnderLock(dataSource);
              logger.log(
                { applied: run.applied, waitedForLockMs: run.waitedForLockMs },
                run.applied.length > 0 ? `applied ${run.applied.length} migration(s)` : 'schema up to date',
              );
            }
            return dataSource;
          },
        }),
      ],
      exports: [TypeOrmModule],
    };
  }
}
