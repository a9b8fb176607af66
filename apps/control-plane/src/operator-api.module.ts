import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { API_TOKENS_PROVIDER, ApiTokenEntity, OPERATOR_SESSIONS_PROVIDER } from '@rackseal/api-tokens';
import { attestationProviders, PolicyGroups, PromotePreviews } from '@rackseal/attestation';
import { inventoryImporterProvider, InventoryImportsRepository } from '@rackseal/inventory';
import { GroupAttestationIntervals, GroupIntervalsRepository, MachineReattestRequests, MachineRevocations, MachinesRepository } from '@rackseal/machines';
import { deliveriesProviders } from '@rackseal/deliveries';
import { secretsProviders } from '@rackseal/secrets';
import { loadTrustStore, TrustStoreCache, VENDOR_CAS_PROVIDER, VendorCaEntity } from '@rackseal/vendor-cas';
import { AuditController } from './audit/audit.controller';
import { BearerAuthGuard } from './auth/bearer-auth.guard';
import { InventoryController } from './inventory/inventory.controller';
import { MachinesController } from './machines/machines.controller';
import { NodeRequestGuard } from './auth/node-request.guard';
import { NodeApprovalsController } from './node-api/approvals.controller';
import { AttestationMetrics } from './node-api/attestation-metrics';
import { AttestationsController } from './node-api/attestations.controller';
import { KeysController } from './node-api/keys.controller';
import { SelfController } from './node-api/self.controller';
import { GroupApprovalsController } from './policies/approvals.controller';
import { GroupIntervalController } from './policies/group-interval.controller';
import { GroupsController } from './policies/groups.controller';
import { PoliciesController } from './policies/policies.controller';
import { RuntimePolicyController } from './policies/runtime-policy.controller';
import { DeliveriesController } from './deliveries/deliveries.controller';
import { VersionProgressController } from './deliveries/version-progress.controller';
import { PrewrapController } from './deliveries/prewrap.controller';
import { MailboxController } from './node-api/mailbox.controller';
import { ClusterCasController } from './secrets/cluster-cas.controller';
import { SecretsController } from './secrets/secrets.controller';
import { TokensController } from './tokens/tokens.controller';
import { SessionController } from './session/session.controller';
import { FleetController } from './fleet/fleet.controller';
import { VendorCasController } from './vendor-cas/vendor-cas.controller';

/**
 * The operator API under /v1 (bearer-token authentication with scopes on every route) and the node
 * API under /node/v1 (@NodeApi: no operator token; the enrollment routes authenticated by the
 * protocol, the later ones by the node credential, @NodeAuthenticated).
 */
// Attestation starts read the trust store on every request: reuse it while vendor_cas is unchanged
// (the import loads it once per file anyway).
const attestationTrustStore = new TrustStoreCache();

@Module({
  imports: [TypeOrmModule.forFeature([ApiTokenEntity, VendorCaEntity])],
  controllers: [SessionController, FleetController, TokensController, AuditController, VendorCasController, InventoryController, MachinesController, PoliciesController, GroupsController, RuntimePolicyController, GroupIntervalController, GroupApprovalsController, AttestationsController, SelfController, KeysController, NodeApprovalsController, SecretsController, ClusterCasController, DeliveriesController, VersionProgressController, PrewrapController, MailboxController],
  providers: [
    API_TOKENS_PROVIDER,
    OPERATOR_SESSIONS_PROVIDER,
    VENDOR_CAS_PROVIDER,
    inventoryImporterProvider(loadTrustStore),
    InventoryImportsRepository,
    MachinesRepository,
    MachineRevocations,
    MachineReattestRequests,
    GroupIntervalsRepository,
    GroupAttestationIntervals,
    ...attestationProviders((m) => attestationTrustStore.load(m)),
    // The dashboard's groups view (needs GroupAttestationIntervals, which the worker's attestation wiring lacks).
    PolicyGroups,
    PromotePreviews,
    ...secretsProviders(),
    // The control plane plans deliveries (in the secret's and the attestation's transactions) and serves the mailbox; it seals none.
    ...deliveriesProviders(),
    NodeRequestGuard,
    AttestationMetrics,
    { provide: APP_GUARD, useClass: BearerAuthGuard },
  ],
})
export class OperatorApiModule {}
