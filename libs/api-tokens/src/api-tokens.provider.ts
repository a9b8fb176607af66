import type { Provider } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { Clock, RandomSource } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { ApiTokens } from './api-tokens';

/** ApiTokens wired to the process's database, audit log, clock and randomness. */
export const API_TOKENS_PROVIDER: Provider = {
  provide: ApiTokens,
  inject: [DataSource, AuditLog, Clock, RandomSource],
  useFactory: (dataSource: DataSource, audit: AuditLog, clock: Clock, random: RandomSource) => new ApiTokens(dataSource, audit, clock, random),
};
