import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MACHINE_STATES, type MachineStateCounts, MachinesRepository } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { Public } from '../auth/auth.decorators';

/**
 * Prometheus text exposition (format 0.0.4) of the figures an operator alerts on. Gauges are read at
 * scrape time from PostgreSQL, so every replica reports the same fleet-wide values. Counts and ages
 * only: nothing here identifies a machine or an operator.
 */
@ApiTags('health')
@Public()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly clock: Clock,
    private readonly suppressed: SuppressedAuditRecords,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOkResponse({ description: 'Prometheus text format', type: String })
  async metrics(): Promise<string> {
    const intervalMs = this.config.machines.attestationIntervalMs;
    const [status, byState, overdue] = await Promise.all([
      this.audit.sequencerStatus(),
      this.machines.countByState(),
      this.machines.countOverdue(this.clock.now(), intervalMs),
    ]);
    return [
      gauge('rackseal_audit_pending_records', 'Audit records appended but not yet integrated into the tree.', status.pending),
      gauge('rackseal_audit_unsigned_records', 'Audit records in the tree but not yet covered by a signed checkpoint.', status.unsigned),
      gauge(
        'rackseal_audit_sequencer_lag_seconds',
        'The longest a committed audit record has waited for a signed checkpoint, pending or sequenced (0 when none).',
        Math.max(status.oldestPendingAgeMs, status.unsignedAgeMs) / 1000,
      ),
      gauge('rackseal_audit_max_merge_delay_seconds', 'AUDIT_MAX_MERGE_DELAY_MS: the lag past which readiness reports degraded.', this.config.audit.maxMergeDelayMs / 1000),
      gauge('rackseal_audit_tree_size', 'Records integrated into the audit Merkle tree.', status.treeSize),
      perState('rackseal_machines', 'Machines per lifecycle state.', byState, MACHINE_STATES),
      // Liveness of the fleet (issue 12 item 7, keylime#1896): a dead agent or verifier leaves machines
      // unattested without any refusal to see; these gauges rising are the alert. Revoked machines never
      // attest. Each machine is held to its group's interval (the fleet default without one).
      perState(
        'rackseal_machines_not_attested_within_interval',
        'Machines (revoked ones left out) with no successful attestation within their group\'s attestation interval (MACHINE_ATTESTATION_INTERVAL_MS for a group without its own), per state.',
        overdue.byState,
        MACHINE_STATES.filter((state) => state !== 'revoked'),
      ),
      gauge('rackseal_machine_attestation_interval_seconds', 'MACHINE_ATTESTATION_INTERVAL_MS: the fleet default interval, for groups without their own.', intervalMs / 1000),
      perGroup(
        'rackseal_group_machines_not_attested_within_interval',
        'Machines (revoked ones left out) with no successful attestation within their group\'s interval, per group (group="" for machines without one).',
        overdue.byGroup.map((g) => [g.group, g.overdue]),
      ),
      perGroup(
        'rackseal_group_attestation_interval_seconds',
        'The attestation interval each group\'s machines are held to: its own, else MACHINE_ATTESTATION_INTERVAL_MS.',
        overdue.byGroup.map((g) => [g.group, g.intervalSeconds ?? intervalMs / 1000]),
      ),
      suppressedCounter(this.suppressed),
    ].join('');
  }
}

/**
 * This process's count (a counter, unlike the fleet-wide gauges above: each replica reports its
 * own, as its budget is its own) of refusals left out of the audit log by the budgets of
 * unauthenticated refusals, per action and code or reason. Series appear at the first one.
 */
function suppressedCounter(suppressed: SuppressedAuditRecords): string {
  const name = 'rackseal_audit_refusals_suppressed_total';
  const series = suppressed.counts().map(({ action, kind, count }) => `${name}{action="${action}",kind="${kind}"} ${count}\n`);
  return `# HELP ${name} Refusals not written to the audit log (over the per-process budget of unauthenticated refusals), per action and code.\n# TYPE ${name} counter\n${series.join('')}`;
}

function gauge(name: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`;
}

/** One gauge with a `state` label per state (every state listed, 0 included, so a series never vanishes). */
function perState(name: string, help: string, counts: MachineStateCounts, states: readonly (keyof MachineStateCounts)[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${states.map((state) => `${name}{state="${state}"} ${counts[state]}\n`).join('')}`;
}

/**
 * One gauge with a `group` label per group: groups are operator-defined names (GROUP_PATTERN: lowercase
 * letters, digits and . _ -, nothing to escape), so the cardinality is the operator's. Machines without
 * a group are `group=""`. No sample at all when there is no group (HELP and TYPE still say the name).
 */
function perGroup(name: string, help: string, values: readonly (readonly [string | null, number])[]): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${values.map(([group, value]) => `${name}{group="${group ?? ''}"} ${value}\n`).join('')}`;
}
