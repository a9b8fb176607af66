import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { DELIVERY_STATES, type DeliveryState, type FleetOverview, MACHINE_STATES, type MachineEvidence, type MachineState, type RefusalCount } from '@rackseal/api-contracts';
import { RuntimeVerdictDto } from '../policies/runtime-policy.dto';

export class RefusalCountDto implements RefusalCount {
  @ApiProperty({ example: 'attestation.refused' }) action: string;
  @ApiProperty({ type: String, nullable: true, example: 'attestation.policy-mismatch' }) code: string | null;
  @ApiProperty() count: number;
}

export class RefusalsDto {
  @ApiProperty() windowSeconds: number;
  @ApiProperty({ description: 'how many of the newest audit records were read' }) scannedRecords: number;
  @ApiProperty({ type: RefusalCountDto, isArray: true, description: 'most frequent first' }) byReason: RefusalCountDto[];
}

export class CheckpointSummaryDto {
  @ApiProperty() treeSize: number;
  @ApiProperty() signedAt: Date;
  @ApiProperty({ description: 'hex' }) rootHash: string;
}

export class AuditSummaryDto {
  @ApiProperty() pending: number;
  @ApiProperty() oldestPendingAgeMs: number;
  @ApiProperty() unsigned: number;
  @ApiProperty() treeSize: number;
  @ApiProperty({ type: CheckpointSummaryDto, nullable: true }) latestCheckpoint: CheckpointSummaryDto | null;
}

export class FleetOverviewDto implements FleetOverview<Date> {
  @ApiProperty() at: Date;
  @ApiProperty({ type: 'object', properties: Object.fromEntries(MACHINE_STATES.map((s) => [s, { type: 'integer' }])) }) machinesByState: Record<MachineState, number>;
  @ApiProperty({ description: 'machines, revoked ones left out, not attested within their group\'s interval' }) overdue: number;
  @ApiProperty({ type: 'object', properties: Object.fromEntries(DELIVERY_STATES.map((s) => [s, { type: 'integer' }])) }) deliveriesByState: Record<DeliveryState, number>;
  @ApiProperty({ type: RefusalsDto }) refusals: RefusalsDto;
  @ApiProperty({ type: AuditSummaryDto }) audit: AuditSummaryDto;
}

export class MachineEvidenceDto implements MachineEvidence<Date> {
  @ApiProperty({ format: 'uuid' }) registrationId: string;
  @ApiProperty() at: Date;
  @ApiProperty({ example: 'sha256' }) bank: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, description: 'PCR index → lowercase hex' }) values: Record<string, string>;
  @ApiPropertyOptional({ type: RuntimeVerdictDto, description: 'the last verdict of the group\'s runtime policy on the machine\'s IMA list' }) runtime?: RuntimeVerdictDto;
}
