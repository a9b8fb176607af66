import { type DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { attestationProviders } from '@rackseal/attestation';
import type { RacksealConfig } from '@rackseal/config';
import { deliveriesProviders, type EnvelopeSealer } from '@rackseal/deliveries';
import { MachinesRepository } from '@rackseal/machines';
import { sharedImports } from '@rackseal/runtime';
import { secretsProviders } from '@rackseal/secrets';
import { loadTrustStore } from '@rackseal/vendor-cas';
import { AUDIT_SEQUENCER_PROVIDER } from '@rackseal/audit';
import { AuditSequencerHost } from './audit-sequencer-host';
import { JobHandlerDiscovery } from './job-handler-discovery';
import { JobWorkerHost } from './job-worker-host';
import { AuditVerifyChainJob } from './jobs/audit-verify-chain.job';
import { DeliveryDeliverJob } from './jobs/delivery-deliver.job';
import { DeliveryPrewrapJob } from './jobs/delivery-prewrap.job';
import { DeliveryReconcileJob } from './jobs/delivery-reconcile.job';
import { SecretRotateJob } from './jobs/secret-rotate.job';
import { SecretRotationCheckJob } from './jobs/secret-rotation-check.job';
import { OutboxRelayHost } from './outbox-relay-host';
import { WorkerMetrics } from './worker-metrics';

/** Every class with a @JobHandler method; the host proves at boot this covers the whole catalog. */
export const JOB_HANDLER_PROVIDERS = [AuditVerifyChainJob, DeliveryDeliverJob, DeliveryPrewrapJob, DeliveryReconcileJob, SecretRotationCheckJob, SecretRotateJob];

export interface WorkerOptions {
  /** Replaces the product's envelope sealer (libs/deliveries WrappingEnvelopeSealer): the delivery suites' test sealer. */
  readonly sealer?: EnvelopeSealer;
}

/**
 * Root module of the worker: the shared modules plus queue consumers, the audit sequencer and the
 * deliveries' outbox relay. No HTTP. The deliveries read machines, attestation keys and secret
 * material through their owners, so their providers come along.
 */
@Module({})
export class WorkerModule {
  static forRoot(config: RacksealConfig, handlers: unknown[] = JOB_HANDLER_PROVIDERS, options: WorkerOptions = {}): DynamicModule {
    return {
      module: WorkerModule,
      imports: [...sharedImports(config, 'worker'), DiscoveryModule],
      providers: [
        JobHandlerDiscovery,
        JobWorkerHost,
        WorkerMetrics,
        AUDIT_SEQUENCER_PROVIDER,
        AuditSequencerHost,
        MachinesRepository,
        ...attestationProviders(loadTrustStore),
        ...secretsProviders(),
        ...deliveriesProviders(options),
        OutboxRelayHost,
        ...(handlers as DynamicModule['providers'] & object),
      ],
    };
  }
}
