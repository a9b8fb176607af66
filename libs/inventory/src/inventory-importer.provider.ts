import type { Provider } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { Clock } from '@rackseal/platform';
import { availableParallelism } from 'node:os';
import { DataSource } from 'typeorm';
import { InventoryImporter, type InventoryImporterOptions } from './importer';
import { InventoryImportHook } from './inventory-import-hook';
import { WorkerRowChecker } from './worker-row-checker';

/**
 * The CSV importer wired to the process's database, audit log, clock and the vendor CA store
 * (`loadTrustStore`, from libs/vendor-cas: this library does not depend on it). Row
 * checks (certificate + chain) run on one worker thread per core when the compiled worker script is
 * there (production builds); from TypeScript sources (jest) they run in-process. The upload limits
 * (file size, idle timeout, concurrent imports) come from the validated config; an InventoryImportHook,
 * when the process binds one (libs/deliveries: pre-wraps), is called in each landing import's transaction.
 */
export function inventoryImporterProvider(loadTrustStore: InventoryImporterOptions['loadTrustStore']): Provider {
  return {
    provide: InventoryImporter,
    inject: [DataSource, AuditLog, Clock, RACKSEAL_CONFIG, { token: InventoryImportHook, optional: true }],
    useFactory: (dataSource: DataSource, audit: AuditLog, clock: Clock, config: RacksealConfig, importHook?: InventoryImportHook) =>
      new InventoryImporter(dataSource, audit, clock, {
        loadTrustStore,
        ekGraceDays: config.ekCertGraceDays,
        rowChecker: WorkerRowChecker.ifAvailable(availableParallelism()),
        csv: { maxFileBytes: config.inventory.maxFileBytes },
        maxConcurrentImports: config.inventory.maxConcurrentImports,
        uploadIdleTimeoutMs: config.inventory.uploadIdleTimeoutMs,
        ...(importHook === undefined ? {} : { importHook }),
      }),
  };
}
