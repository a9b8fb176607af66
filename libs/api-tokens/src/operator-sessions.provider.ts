import type { Provider } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { Clock, RandomSource } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { ApiTokens } from './api-tokens';
import { OperatorSessions } from './operator-sessions';

/** OperatorSessions wired to the process's database, tokens, audit log, clock and randomness. */
export const OPERATOR_SESSIONS_PROVIDER: Provider = {
  provide: OperatorSessions,
  inject: [DataSource, ApiTokens, AuditLog, Clock, RandomSource],
  useFactory: (dataSource: DataSource, tokens: ApiTokens, audit: AuditLog, clock: Clock, random: RandomSource) => new OperatorSessions(dataSource, tokens, audit, clock, random),
};
