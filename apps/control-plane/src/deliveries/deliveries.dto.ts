import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DEFAULT_PAGE_SIZE, DELIVERY_STATES, type DeliveryState, type DeliveryView, type VersionDeliveryProgress, MAX_PAGE_SIZE, MAX_TEXT_CURSOR_LENGTH, MIN_PAGE_SIZE, SECRET_BINDINGS, SECRET_KINDS } from '@rackseal/api-contracts';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { IsPrintableText, IsQueryInteger } from '../http/validators';

export class DeliveriesQueryDto {
  @ApiPropertyOptional({ enum: DELIVERY_STATES }) @IsOptional() @IsString() @MaxLength(16) state?: string;
  @ApiPropertyOptional({ description: 'a machine id or serial', maxLength: MAX_TEXT_CURSOR_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_TEXT_CURSOR_LENGTH)
  @IsPrintableText()
  machine?: string;
  @ApiPropertyOptional({ description: 'a secret name', maxLength: 63 }) @IsOptional() @IsString() @MaxLength(63) @IsPrintableText() secret?: string;
  @ApiPropertyOptional({ description: 'Only deliveries after this id (paging: pass the last id of the previous page).', format: 'uuid' })
  @IsOptional()
  @IsString()
  @MaxLength(36)
  after?: string;
  @ApiPropertyOptional({ type: 'integer', default: DEFAULT_PAGE_SIZE, minimum: MIN_PAGE_SIZE, maximum: MAX_PAGE_SIZE })
  @IsOptional()
  @IsQueryInteger({ min: MIN_PAGE_SIZE, max: MAX_PAGE_SIZE })
  limit?: number;
}

class DeliverySecretDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: SECRET_KINDS }) kind: (typeof SECRET_KINDS)[number];
  @ApiProperty({ type: 'integer' }) version: number;
}

class DeliveryMachineDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() serial: string;
}

export class DeliveryViewDto implements DeliveryView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: DELIVERY_STATES }) state: DeliveryState;
  @ApiProperty({ type: DeliverySecretDto }) secret: DeliverySecretDto;
  @ApiProperty({ type: DeliveryMachineDto }) machine: DeliveryMachineDto;
  @ApiProperty({ enum: SECRET_BINDINGS }) binding: (typeof SECRET_BINDINGS)[number];
  @ApiProperty({ type: 'integer', description: '1, plus one per retry' }) generation: number;
  @ApiProperty({ type: 'integer' }) attempts: number;
  @ApiProperty({ type: String, nullable: true, description: 'the code of the last failure' }) lastError: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) readyAt: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) ackedAt: string | null;
  @ApiProperty({ format: 'date-time' }) expiresAt: string;
}

class DeliveryStateCountsDto {
  @ApiProperty({ type: 'integer' }) pending: number;
  @ApiProperty({ type: 'integer' }) ready: number;
  @ApiProperty({ type: 'integer' }) acked: number;
  @ApiProperty({ type: 'integer' }) failed: number;
  @ApiProperty({ type: 'integer' }) cancelled: number;
  @ApiProperty({ type: 'integer' }) expired: number;
  @ApiProperty({ type: 'integer', description: 'pre-wraps not sealed yet (issue 14 item 6)' }) 'prewrap-pending': number;
  @ApiProperty({ type: 'integer', description: 'pre-wraps sealed to an imported machine, held for export' }) prewrapped: number;
}

export class VersionDeliveryProgressDto implements VersionDeliveryProgress {
  @ApiProperty() secret: string;
  @ApiProperty({ type: 'integer' }) version: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'when every delivery of a newer version was acked' }) retiredAt: string | null;
  @ApiProperty({ type: 'integer', description: 'deliveries of the version (one per target machine able to receive it so far)' }) total: number;
  @ApiProperty({ type: DeliveryStateCountsDto }) states: DeliveryStateCountsDto;
  @ApiProperty({ description: 'nothing pending or ready: every target acked, or some failed' }) settled: boolean;
}
