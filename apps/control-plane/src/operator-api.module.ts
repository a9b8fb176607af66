import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApiTokenEntity } from '@rackseal/api-tokens';
import { AuditRecordEntity } from '@rackseal/audit';
import { AuditController } from './audit/audit.controller';
import { API_TOKENS_PROVIDER } from './auth/api-tokens.provider';
import { BearerAuthGuard } from './auth/bearer-auth.guard';
import { TokensController } from './tokens/tokens.controller';

/** The operator API under /v1: bearer-token authentication with scopes on every route. */
@Module({
  imports: [TypeOrmModule.forFeature([ApiTokenEntity, AuditRecordEntity])],
  controllers: [TokensController, AuditController],
  providers: [API_TOKENS_PROVIDER, { provide: APP_GUARD, useClass: BearerAuthGuard }],
})
export class OperatorApiModule {}
