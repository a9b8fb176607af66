import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { IsQueryInteger } from '../http/validators';

export class AuditQueryDto {
  @ApiPropertyOptional({
    description: 'Only records after this sequence number (for paging and tailing).',
    type: 'integer',
    default: 0,
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
  })
  @IsOptional()
  @IsQueryInteger({ min: 0 })
  after?: number;

  @ApiPropertyOptional({ type: 'integer', default: 100, minimum: 1, maximum: 1000 })
  @IsOptional()
  @IsQueryInteger({ min: 1, max: 1000 })
  limit?: number;
}

export class AuditRecordDto {
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

  @ApiProperty({ enum: ['success', 'refused', 'failure'] })
  outcome: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  details: Record<string, unknown>;

  @ApiProperty({ description: 'hex SHA-256 of the previous record' })
  prevHash: string;

  @ApiProperty({ description: 'hex SHA-256 of this record' })
  hash: string;
}
