import { type DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { RacksealConfig } from '@rackseal/config';
import { sharedImports } from '@rackseal/runtime';
import { AUDIT_SEQUENCER_PROVIDER } from '@rackseal/audit';
import { AuditSequencerHost } from './audit-sequencer-host';
import { JobHandlerDiscovery } from './job-handler-discovery';
import { JobWorkerHost } from './job-worker-host';
import { AuditVerifyChainJob } from './jobs/audit-verify-chain.job';

/** Every class with a @JobHandler method; the host proves at boot this covers the whole catalog. */
export const JOB_HANDLER_PROVIDERS = [AuditVerifyChainJob];

/** Root module of the worker: the shared modules plus queue consumers and the audit sequencer. No HTTP. */
@Module({})
export class WorkerModule {
  static forRoot(config: RacksealConfig, handlers: unknown[] = JOB_HANDLER_PROVIDERS): DynamicModule {
    return {
      module: WorkerModule,
      imports: [...sharedImports(config, 'worker'), DiscoveryModule],
      providers: [JobHandlerDiscovery, JobWorkerHost, AUDIT_SEQUENCER_PROVIDER, AuditSequencerHost, ...(handlers as DynamicModule['providers'] & object)],
    };
  }
}
