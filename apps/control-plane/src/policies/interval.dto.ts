import { ApiProperty } from '@nestjs/swagger';
import {
  ATTESTATION_INTERVAL_SOURCES,
  type AttestationIntervalSource,
  type GroupAttestationInterval,
  type GroupAttestationIntervalRemoval,
  MAX_ATTESTATION_INTERVAL_SECONDS,
  MIN_ATTESTATION_INTERVAL_SECONDS,
  type SetAttestationIntervalRequest,
} from '@rackseal/api-contracts';
import { IsInt } from 'class-validator';

export class SetAttestationIntervalDto implements SetAttestationIntervalRequest {
  @ApiProperty({
    type: 'integer',
    minimum: MIN_ATTESTATION_INTERVAL_SECONDS,
    maximum: MAX_ATTESTATION_INTERVAL_SECONDS,
    description: 'how often the group\'s machines must attest, in seconds (10 s to 31 days; out of bounds: 400 machine.invalid-interval)',
    example: 900,
  })
  // The type here; the bounds are libs/machines' (machine.invalid-interval), whoever calls it.
  @IsInt()
  attestationIntervalSeconds: number;
}

export class GroupAttestationIntervalDto implements GroupAttestationInterval<Date> {
  @ApiProperty() group: string;
  @ApiProperty({ description: 'the interval in force, in seconds: the group\'s own, else the fleet default' }) attestationIntervalSeconds: number;
  @ApiProperty({ enum: ATTESTATION_INTERVAL_SOURCES, description: 'group: its own; fleet-default: MACHINE_ATTESTATION_INTERVAL_MS' }) source: AttestationIntervalSource;
  @ApiProperty({ description: 'MACHINE_ATTESTATION_INTERVAL_MS in seconds' }) fleetDefaultSeconds: number;
  @ApiProperty({ nullable: true, type: Date, description: 'when the group\'s own interval was set; null with the fleet default' }) updatedAt: Date | null;
  @ApiProperty({ nullable: true, type: String, description: 'e.g. token:<id>; null with the fleet default' }) updatedBy: string | null;
}

export class GroupAttestationIntervalRemovalDto implements GroupAttestationIntervalRemoval<Date> {
  @ApiProperty({ description: 'false when the group had no interval of its own (nothing written)' }) changed: boolean;
  @ApiProperty({ type: GroupAttestationIntervalDto }) interval: GroupAttestationIntervalDto;
}
