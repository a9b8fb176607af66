import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class AuditQueryDto {
  @ApiPropertyOptional({ description: 'Only records after this sequence number (for paging and tailing).', default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after?: number;

  @ApiPropertyOptional({ default: 100, maximum: 1000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
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
