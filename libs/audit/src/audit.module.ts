import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditLog } from './audit-log';
import { AuditRecordEntity } from './audit-record.entity';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditRecordEntity])],
  providers: [AuditLog],
  exports: [AuditLog],
})
export class AuditModule {}
