import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
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
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOkResponse({ description: 'Prometheus text format', type: String })
  async metrics(): Promise<string> {
    const status = await this.audit.sequencerStatus();
    return [
      gauge('rackseal_audit_pending_records', 'Audit records appended but not yet integrated into the tree.', status.pending),
      gauge('rackseal_audit_sequencer_lag_seconds', 'Age of the oldest pending audit record (0 when none).', status.oldestPendingAgeMs / 1000),
      gauge('rackseal_audit_max_merge_delay_seconds', 'AUDIT_MAX_MERGE_DELAY_MS: the lag past which readiness reports degraded.', this.config.audit.maxMergeDelayMs / 1000),
      gauge('rackseal_audit_tree_size', 'Records integrated into the audit Merkle tree.', status.treeSize),
    ].join('');
  }
}

function gauge(name: string, help: string, value: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`;
}
