import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class DependencyStatus {
  @ApiProperty({ enum: ['up', 'down'] })
  status: 'up' | 'down';

  @ApiProperty({ description: 'Round trip of the probe in milliseconds.' })
  latencyMs: number;

  @ApiPropertyOptional({ description: 'Why the dependency is down (no credentials, no internals).' })
  reason?: string;
}

export class AuditSequencerStatus {
  @ApiProperty({ enum: ['ok', 'degraded', 'unknown'], description: 'degraded: the oldest pending audit record waited longer than AUDIT_MAX_MERGE_DELAY_MS' })
  status: 'ok' | 'degraded' | 'unknown';

  @ApiProperty({ description: 'Audit records appended but not yet in the tree.' })
  pending: number;

  @ApiProperty({ description: 'Audit records in the tree but not yet covered by a signed checkpoint (a stuck signer).' })
  unsigned: number;

  @ApiProperty({ description: 'The longest a committed record has waited for a signed checkpoint, pending or sequenced, in milliseconds (0 when none).' })
  lagMs: number;

  @ApiProperty()
  maxMergeDelayMs: number;
}

export class ReadinessReport {
  @ApiProperty({
    enum: ['ready', 'degraded', 'unavailable'],
    description: 'degraded (200): this replica serves, but the audit sequencer (in the workers) is behind',
  })
  status: 'ready' | 'degraded' | 'unavailable';

  @ApiProperty({ type: DependencyStatus })
  postgres: DependencyStatus;

  @ApiProperty({ type: DependencyStatus })
  redis: DependencyStatus;

  @ApiProperty({ type: AuditSequencerStatus })
  audit: AuditSequencerStatus;
}

export class LivenessReport {
  @ApiProperty({ enum: ['alive'] })
  status: 'alive';
}
