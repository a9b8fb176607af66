import type { Provider } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { InventoryImporter, WorkerRowChecker } from '@rackseal/inventory';
import { Clock } from '@rackseal/platform';
import { loadTrustStore } from '@rackseal/vendor-cas';
import { availableParallelism } from 'node:os';
import { DataSource } from 'typeorm';

/**
 * Days an EK certificate may be past its notAfter and still be imported. Strict for now; many vendor
 * EK certificates outlive their issuers' policies, so this is meant to become a configuration
 * variable (EK_CERT_GRACE_DAYS) shared with attestation.
 */
export const INVENTORY_EK_GRACE_DAYS = 0;

/**
 * The CSV importer wired to the process's database, audit log, clock and the vendor CA store. Row
 * checks (certificate + chain) run on one worker thread per core when the compiled worker script is
 * there (production builds); from TypeScript sources (jest) they run in-process.
 */
export const INVENTORY_IMPORTER_PROVIDER: Provider = {
  provide: InventoryImporter,
  inject: [DataSource, AuditLog, Clock],
  useFactory: (dataSource: DataSource, audit: AuditLog, clock: Clock) =>
    new InventoryImporter(dataSource, audit, clock, {
      loadTrustStore,
      ekGraceDays: INVENTORY_EK_GRACE_DAYS,
      rowChecker: WorkerRowChecker.ifAvailable(availableParallelism()),
    }),
};
