import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  DEFAULT_PAGE_SIZE,
  GROUP_PATTERN,
  GROUP_RULE,
  type Machine,
  type MachineDetail,
  type MachineFailure,
  type MachineListFilters,
  type MachineReattestRequest,
  type MachineRevocation,
  MACHINE_STATES,
  type MachineState,
  type MachineTransitionRecord,
  MAX_PAGE_SIZE,
  MAX_REVOKE_REASON_LENGTH,
  MAX_TEXT_CURSOR_LENGTH,
  MIN_PAGE_SIZE,
  type RevokeMachineRequest,
} from '@rackseal/api-contracts';
import { IsIn, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { IsInstant, IsPrintableText, IsQueryInteger } from '../http/validators';

export class MachinesQueryDto implements MachineListFilters {
  @ApiPropertyOptional({ enum: MACHINE_STATES, description: 'Only machines in this state.' })
  @IsOptional()
  @IsIn(MACHINE_STATES)
  state?: MachineState;

  @ApiPropertyOptional({ description: 'Only machines of this group.' })
  @IsOptional()
  @Matches(GROUP_PATTERN, { message: GROUP_RULE })
  group?: string;

  @ApiPropertyOptional({
    format: 'date-time',
    description:
      'Only machines not attested since this instant (RFC 3339 with an offset, e.g. 2026-03-01T10:00:00Z): never attested, or last attested before it. Revoked machines are left out. The fleet liveness check: a machine whose agent or verifier died shows up here.',
  })
  @IsOptional()
  @IsInstant()
  notAttestedSince?: string;

  @ApiPropertyOptional({
    enum: ['true'],
    description:
      'Only overdue machines: not revoked, and never attested or last attested longer ago than their group\'s attestation interval (PUT /v1/groups/:group/interval; MACHINE_ATTESTATION_INTERVAL_MS for a group without its own). The per-group liveness check.',
  })
  @IsOptional()
  @IsIn(['true'], { message: 'overdue takes only true (leave it out for every machine)' })
  overdue?: 'true';

  @ApiPropertyOptional({ description: 'Only serials after this one (paging: pass the last serial of the previous page).', maxLength: MAX_TEXT_CURSOR_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_TEXT_CURSOR_LENGTH)
  @IsPrintableText()
  after?: string;

  @ApiPropertyOptional({ type: 'integer', default: DEFAULT_PAGE_SIZE, minimum: MIN_PAGE_SIZE, maximum: MAX_PAGE_SIZE })
  @IsOptional()
  @IsQueryInteger({ min: MIN_PAGE_SIZE, max: MAX_PAGE_SIZE })
  limit?: number;
}

export class MachineFailureDto implements MachineFailure<Date> {
  @ApiProperty() at: Date;
  @ApiProperty({ description: 'the refusal\'s error code, e.g. attestation.pcr-mismatch' }) code: string;
  @ApiProperty({ description: 'one line' }) reason: string;
  @ApiProperty({ type: String, isArray: true, description: 'what diverged, e.g. "PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs"' })
  explanation: readonly string[];
  @ApiPropertyOptional({ description: 'the registration the refusal ended' }) registrationId?: string;
}

/** Dates here: Nest serialises them to ISO 8601, the wire shape Machine declares. */
export class MachineDto implements Machine<Date> {
  @ApiProperty() id: string;
  @ApiProperty() serial: string;
  @ApiProperty({ nullable: true, type: String }) assetTag: string | null;
  @ApiProperty({ nullable: true, type: String }) hostname: string | null;
  @ApiProperty({ nullable: true, type: String }) group: string | null;
  @ApiProperty() ekPubHash: string;
  @ApiProperty({ nullable: true, type: String, description: 'SHA-256 of the EK certificate DER; null when imported by ek_pub_hash' })
  ekCertFingerprint: string | null;
  @ApiProperty({ enum: MACHINE_STATES }) state: MachineState;
  @ApiProperty() importedAt: Date;
  @ApiProperty() updatedAt: Date;
  @ApiProperty({ nullable: true, type: String }) importId: string | null;
  @ApiProperty({ nullable: true, type: Date, description: 'the first successful attestation' }) firstAttestedAt: Date | null;
  @ApiProperty({ nullable: true, type: Date, description: 'the latest successful attestation' }) lastAttestedAt: Date | null;
  @ApiProperty({ nullable: true, type: MachineFailureDto, description: 'the latest refused attestation (kept after a later success)' })
  lastFailure: MachineFailureDto | null;
}

export class MachineTransitionDto implements MachineTransitionRecord<Date> {
  @ApiProperty() seq: number;
  @ApiProperty({ enum: MACHINE_STATES }) from: MachineState;
  @ApiProperty({ enum: MACHINE_STATES }) to: MachineState;
  @ApiProperty() reason: string;
  @ApiProperty({ description: 'e.g. token:<id> for an operator' }) actor: string;
  @ApiProperty() at: Date;
}

export class MachineDetailDto extends MachineDto implements MachineDetail<Date> {
  @ApiProperty({ type: MachineTransitionDto, isArray: true, description: 'every state change, oldest first' })
  history: MachineTransitionDto[];
}

export class RevokeMachineDto implements RevokeMachineRequest {
  @ApiProperty({ description: 'why, kept in the history and the audit record', minLength: 1, maxLength: MAX_REVOKE_REASON_LENGTH })
  @IsString()
  @Length(1, MAX_REVOKE_REASON_LENGTH)
  @Matches(/\S/, { message: 'reason must not be blank' })
  @IsPrintableText()
  reason: string;
}

export class MachineRevocationDto implements MachineRevocation<Date> {
  @ApiProperty({ description: 'false when the machine was already revoked (nothing written)' })
  changed: boolean;

  @ApiProperty({ type: MachineDetailDto })
  machine: MachineDetailDto;
}

export class MachineReattestRequestDto implements MachineReattestRequest<Date> {
  @ApiProperty({ format: 'uuid' })
  machineId: string;

  @ApiProperty()
  serial: string;

  @ApiProperty({ type: String, format: 'date-time', description: 'when the pending request was made (the first, when one was already pending)' })
  requestedAt: Date;
}

export const MACHINE_REF_DESCRIPTION = 'the machine id (UUID) or its serial';
