import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { DeliveriesRepository } from '@rackseal/deliveries';
import { MachinesRepository } from '@rackseal/machines';
import { MetricsRegistry, registerAuditGauges, registerDeliveryGauges, registerMachineGauges } from '@rackseal/metrics';
import { Clock } from '@rackseal/platform';
import { Counter } from 'prom-client';

/**
 * What the control plane adds to its registry: the fleet-wide gauges read from PostgreSQL at scrape
 * time through their owners (machines, deliveries, audit backlog) and this process's count of
 * refusals left out of the audit log. The HTTP histogram (http/http-metrics.ts) and the attestation
 * counter (node-api/attestation-metrics.ts) record as requests are served.
 */
@Injectable()
export class ControlPlaneMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly deliveries: DeliveriesRepository,
    private readonly suppressed: SuppressedAuditRecords,
    private readonly clock: Clock,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  onModuleInit(): void {
    registerAuditGauges(this.metrics, this.audit, this.config.audit.maxMergeDelayMs);
    registerMachineGauges(this.metrics, this.machines, this.clock, this.config.machines.attestationIntervalMs);
    registerDeliveryGauges(this.metrics, this.deliveries);
    const suppressed = this.suppressed;
    // This process's own count (each replica's budget is its own), per action and code or reason,
    // copied from SuppressedAuditRecords at each scrape; series appear at the first suppressed refusal.
    new Counter({
      name: 'rackseal_audit_refusals_suppressed_total',
      help: 'Refusals not written to the audit log (over the per-process budget of unauthenticated refusals), per action and code.',
      labelNames: ['action', 'kind'],
      registers: [this.metrics.registry],
      collect() {
        this.reset();
        for (const { action, kind, count } of suppressed.counts()) {
          this.inc({ action, kind }, count);
        }
      },
    });
  }
}
