import { ApiProperty } from '@nestjs/swagger';
import {
  ATTESTATION_INTERVAL_SOURCES,
  type AttestationIntervalSource,
  type FailingMachine,
  type GroupDetail,
  type GroupPolicyShape,
  type GroupSummary,
  MACHINE_STATES,
  type MachineState,
  MAX_GROUP_FAILING_MACHINES,
  MAX_POLICY_MACHINE_REF_LENGTH,
  type PolicyMode,
  POLICY_MODES,
  type PromotePreview,
  type PromotePreviewQuery,
  type PromotePreviewSetComparison,
} from '@rackseal/api-contracts';
import { IsString, Length } from 'class-validator';
import { IsPrintableText } from '../http/validators';


export class GroupPolicyShapeDto implements GroupPolicyShape {
  @ApiProperty({ enum: POLICY_MODES }) mode: PolicyMode;
  @ApiProperty({ example: 'sha256' }) bank: string;
  @ApiProperty({ type: 'integer', isArray: true }) pcrs: number[];
  @ApiProperty({ description: 'how many allowed sets the policy has' }) allowedSets: number;
}

export class GroupSummaryDto implements GroupSummary {
  @ApiProperty() group: string;
  @ApiProperty({ type: 'object', properties: Object.fromEntries(MACHINE_STATES.map((s) => [s, { type: 'integer' }])), description: 'the group\'s machines per state' }) machinesByState: Record<MachineState, number>;
  @ApiProperty({ description: 'machines, revoked ones left out, quarantined or whose newest attestation was refused' }) failing: number;
  @ApiProperty({ type: GroupPolicyShapeDto, nullable: true, description: 'null: the group has no PCR policy' }) policy: GroupPolicyShapeDto | null;
  @ApiProperty({ description: 'the interval in force, in seconds: the group\'s own, else the fleet default' }) attestationIntervalSeconds: number;
  @ApiProperty({ enum: ATTESTATION_INTERVAL_SOURCES }) intervalSource: AttestationIntervalSource;
}

class FailureSummaryDto {
  @ApiProperty() at: Date;
  @ApiProperty({ example: 'attestation.policy-mismatch' }) code: string;
  @ApiProperty() reason: string;
}

class SetComparisonDto {
  @ApiProperty({ description: 'the allowed set with the fewest differing PCRs' }) nearestSet: string;
  @ApiProperty({ type: 'integer', isArray: true }) differingPcrs: number[];
}

export class FailingMachineDto implements FailingMachine<Date> {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() serial: string;
  @ApiProperty({ type: String, nullable: true }) hostname: string | null;
  @ApiProperty({ enum: MACHINE_STATES }) state: MachineState;
  @ApiProperty({ type: FailureSummaryDto, nullable: true }) lastFailure: FailureSummaryDto | null;
  @ApiProperty({ type: Date, nullable: true, description: 'its newest verified quote; null: none yet' }) evidenceAt: Date | null;
  @ApiProperty({ type: String, nullable: true }) evidenceBank: string | null;
  @ApiProperty({ type: SetComparisonDto, nullable: true, description: 'null without a quote, without a policy, or with a quote of another bank' }) comparison: SetComparisonDto | null;
}

export class GroupDetailDto extends GroupSummaryDto implements GroupDetail<Date> {
  @ApiProperty({ type: FailingMachineDto, isArray: true, description: `the first ${MAX_GROUP_FAILING_MACHINES} by serial` }) failingMachines: FailingMachineDto[];
}

export class PromotePreviewQueryDto implements PromotePreviewQuery {
  @ApiProperty({ description: 'the canary: machine id (UUID) or serial', maxLength: MAX_POLICY_MACHINE_REF_LENGTH })
  @IsString()
  @Length(1, MAX_POLICY_MACHINE_REF_LENGTH)
  @IsPrintableText()
  machine: string;
}

class PreviewMachineDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() serial: string;
  @ApiProperty({ enum: MACHINE_STATES }) state: MachineState;
}

class PreviewEvidenceDto {
  @ApiProperty({ format: 'uuid' }) registrationId: string;
  @ApiProperty() at: Date;
  @ApiProperty() bank: string;
}

class PreviewSetComparisonDto implements PromotePreviewSetComparison {
  @ApiProperty() label: string;
  @ApiProperty({ type: 'integer', isArray: true, description: 'the PCRs whose new value differs from this set\'s' }) differingPcrs: number[];
}

class PreviewRecoveryDto {
  @ApiProperty({ description: 'failing machines of the group (the canary included) whose newest quote has exactly these values' }) count: number;
  @ApiProperty({ type: String, isArray: true, description: 'the first 100 by serial' }) serials: string[];
  @ApiProperty({ description: `failing machines compared (at most ${MAX_GROUP_FAILING_MACHINES})` }) failingCompared: number;
}

export class PromotePreviewDto implements PromotePreview<Date> {
  @ApiProperty() group: string;
  @ApiProperty({ type: PreviewMachineDto }) machine: PreviewMachineDto;
  @ApiProperty({ type: PreviewEvidenceDto }) evidence: PreviewEvidenceDto;
  @ApiProperty({ description: 'false: promoting creates the group\'s policy (enforce, the evidence\'s bank and PCRs)' }) policyExists: boolean;
  @ApiProperty({ enum: POLICY_MODES }) mode: PolicyMode;
  @ApiProperty() bank: string;
  @ApiProperty({ type: 'integer', isArray: true }) pcrs: number[];
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, description: 'the set the promotion would approve: PCR index → lowercase hex' }) values: Record<string, string>;
  @ApiProperty({ type: String, nullable: true, description: 'a current set with exactly these values, else null' }) sameAsSet: string | null;
  @ApiProperty({ type: 'integer', isArray: true, description: 'the PCRs whose new value no current set has' }) newPcrValues: number[];
  @ApiProperty({ type: PreviewSetComparisonDto, isArray: true }) comparedSets: PreviewSetComparisonDto[];
  @ApiProperty({ type: PreviewRecoveryDto }) recovers: PreviewRecoveryDto;
}
