import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { AUDIT_OUTCOMES, type AuditOutcome, type AuditRecordView, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SEQUENCE_CURSOR, MIN_PAGE_SIZE } from '@rackseal/api-contracts';
import { IsOptional } from 'class-validator';
import { IsQueryInteger } from '../http/validators';

export class AuditQueryDto {
  @ApiPropertyOptional({
    description: 'Only records after this sequence number (for paging and tailing).',
    type: 'integer',
    default: 0,
    minimum: 0,
    maximum: MAX_SEQUENCE_CURSOR,
  })
  @IsOptional()
  @IsQueryInteger({ min: 0, max: MAX_SEQUENCE_CURSOR })
  after?: number;

  @ApiPropertyOptional({ type: 'integer', default: DEFAULT_PAGE_SIZE, minimum: MIN_PAGE_SIZE, maximum: MAX_PAGE_SIZE })
  @IsOptional()
  @IsQueryInteger({ min: MIN_PAGE_SIZE, max: MAX_PAGE_SIZE })
  limit?: number;
}

export class AuditRecordDto implements AuditRecordView {
  @ApiProperty()
  seq: number;

  @ApiProperty()
  recordedAt: string;

  @ApiProperty()
  actor: string;

  @ApiProperty()
  action: string;

  @ApiProperty()
  subject: string;

  @ApiProperty({ enum: AUDIT_OUTCOMES })
  outcome: AuditOutcome;

  @ApiProperty({ type: 'object', additionalProperties: true })
  details: Record<string, unknown>;

  @ApiProperty({ description: 'hex SHA-256 of the previous record' })
  prevHash: string;

  @ApiProperty({ description: 'hex SHA-256 of this record' })
  hash: string;
}
