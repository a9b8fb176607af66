import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { ApiTokenEntity } from '@rackseal/api-tokens';
import { AuditRecordEntity } from '@rackseal/audit';
import { VendorCaEntity } from '@rackseal/vendor-cas';
import { AuditController } from './audit/audit.controller';
import { API_TOKENS_PROVIDER } from './auth/api-tokens.provider';
import { BearerAuthGuard } from './auth/bearer-auth.guard';
import { InventoryController } from './inventory/inventory.controller';
import { INVENTORY_IMPORTER_PROVIDER } from './inventory/inventory.provider';
import { TokensController } from './tokens/tokens.controller';
import { VendorCasController } from './vendor-cas/vendor-cas.controller';
import { VENDOR_CAS_PROVIDER } from './vendor-cas/vendor-cas.provider';

/** The operator API under /v1: bearer-token authentication with scopes on every route. */
@Module({
  imports: [TypeOrmModule.forFeature([ApiTokenEntity, AuditRecordEntity, VendorCaEntity])],
  controllers: [TokensController, AuditController, VendorCasController, InventoryController],
  providers: [API_TOKENS_PROVIDER, VENDOR_CAS_PROVIDER, INVENTORY_IMPORTER_PROVIDER, { provide: APP_GUARD, useClass: BearerAuthGuard }],
})
export class OperatorApiModule {}
