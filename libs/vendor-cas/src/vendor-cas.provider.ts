import type { Provider } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { Clock, RandomSource } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { VendorCas } from './vendor-cas';

/** VendorCas wired to the process's database, audit log, clock and randomness. */
export const VENDOR_CAS_PROVIDER: Provider = {
  provide: VendorCas,
  inject: [DataSource, AuditLog, Clock, RandomSource],
  useFactory: (dataSource: DataSource, audit: AuditLog, clock: Clock, random: RandomSource) => new VendorCas(dataSource, audit, clock, random),
};
