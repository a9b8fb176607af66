import { Global, Module } from '@nestjs/common';
import { AuditLog } from './audit-log';
import { SuppressedAuditRecords } from './suppressed-audit-records';

@Global()
@Module({
  providers: [AuditLog, SuppressedAuditRecords],
  exports: [AuditLog, SuppressedAuditRecords],
})
export class AuditModule {}
