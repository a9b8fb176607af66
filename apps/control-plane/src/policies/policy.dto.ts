import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  type ApprovePolicySetRequest,
  type GroupPolicy,
  MAX_POLICY_LABEL_LENGTH,
  MAX_POLICY_MACHINE_REF_LENGTH,
  type PcrPolicyDocument,
  type PolicyMode,
  POLICY_MODES,
  type PolicyPromotion,
  type PolicyRemoval,
  type PolicySetChange,
  type PolicySetOrigin,
  type PolicyValueSet,
  type PromotePolicyRequest,
} from '@rackseal/api-contracts';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsInt, IsObject, IsOptional, IsString, IsUUID, Length, Max, Min } from 'class-validator';
import { IsPrintableText } from '../http/validators';

/** The PCR indexes a PC Client TPM has (TCG PC Client Platform TPM Profile: 24 PCRs). */
const MAX_PCR = 23;

export class PolicySetOriginDto implements PolicySetOrigin {
  @ApiProperty({ description: 'the canary machine\'s serial' }) machine: string;
  @ApiProperty({ description: 'when the canary\'s quote was verified (ISO 8601)' }) at: string;
  @ApiPropertyOptional({ description: 'base64 of the canary\'s raw TCG event log (at most 1 MiB)' }) eventLog?: string;
}

export class PolicyValueSetDto implements PolicyValueSet {
  @ApiProperty({ description: '1-64 printable characters, unique in the policy', example: 'kernel-6.9' }) label: string;
  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'PCR index → lowercase hex digest of the policy\'s bank, exactly the policy\'s PCRs',
    example: { '0': 'ab'.repeat(32) },
  })
  values: Record<string, string>;
  @ApiPropertyOptional({ type: PolicySetOriginDto }) promotedFrom?: PolicySetOriginDto;
}

/**
 * The policy JSON (libs/pcr-policy's shape). Documentation only: the PUT body is validated by
 * parsePcrPolicy, which names the field at fault (`allowedSets[1].values.4: …`).
 */
export class PcrPolicyDto implements PcrPolicyDocument {
  @ApiProperty({ description: 'PCR bank as rackseal names it: sha1, sha256, sha384, sha512, sha3_256, sha3_384, sha3_512', example: 'sha256' }) bank: string;
  @ApiProperty({ type: 'integer', isArray: true, description: 'ascending, unique, 0-23', example: [0, 4, 7] }) pcrs: number[];
  @ApiProperty({ type: PolicyValueSetDto, isArray: true, description: '1-16 allowed value sets; a quote matches when it equals one' }) allowedSets: PolicyValueSetDto[];
  @ApiProperty({ enum: POLICY_MODES, description: 'enforce: a mismatch quarantines; warn: it is recorded, the machine stays attested' }) mode: PolicyMode;
}

export class GroupPolicyDto implements GroupPolicy<Date> {
  @ApiProperty() group: string;
  @ApiProperty({ type: PcrPolicyDto }) policy: PcrPolicyDto;
  @ApiProperty({ description: 'lowercase hex SHA-256 of the policy JSON as stored (named by the audit records)' }) digest: string;
  @ApiProperty() updatedAt: Date;
  @ApiProperty({ description: 'e.g. token:<id>' }) updatedBy: string;
}

export class PromotePolicyDto implements PromotePolicyRequest {
  @ApiProperty({ description: 'the canary: machine id (UUID) or serial', maxLength: MAX_POLICY_MACHINE_REF_LENGTH })
  @IsString()
  @Length(1, MAX_POLICY_MACHINE_REF_LENGTH)
  @IsPrintableText()
  machine: string;

  @ApiProperty({ description: 'the set\'s label (a set with this label is replaced)', maxLength: MAX_POLICY_LABEL_LENGTH, example: 'kernel-6.9' })
  @IsString()
  @Length(1, MAX_POLICY_LABEL_LENGTH)
  @IsPrintableText()
  label: string;

  @ApiPropertyOptional({ enum: POLICY_MODES, description: 'for a group without a policy (default enforce); otherwise only the policy\'s own' })
  @IsOptional()
  @IsIn(POLICY_MODES)
  mode?: PolicyMode;

  @ApiPropertyOptional({ description: 'for a group without a policy (default: the evidence\'s bank); otherwise only the policy\'s own', example: 'sha256' })
  @IsOptional()
  @IsString()
  @Length(1, 16)
  bank?: string;

  @ApiPropertyOptional({ type: 'integer', isArray: true, description: 'for a group without a policy (default: the PCRs of the evidence); otherwise only the policy\'s own', example: [0, 1, 2, 3, 4, 5, 6, 7] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_PCR + 1)
  @IsInt({ each: true })
  @Min(0, { each: true })
  @Max(MAX_PCR, { each: true })
  pcrs?: number[];

  @ApiPropertyOptional({ format: 'uuid', description: 'the quote the operator saw (the preview\'s evidence.registrationId): 409 policy.evidence-changed when the machine\'s newest verified quote is another by now' })
  @IsOptional()
  @IsUUID()
  registrationId?: string;
}

class PromotedMachineDto {
  @ApiProperty() id: string;
  @ApiProperty() serial: string;
}

export class PolicyPromotionDto implements PolicyPromotion<Date> {
  @ApiProperty({ description: 'true when the group had no policy and this one was created' }) created: boolean;
  @ApiProperty({ description: 'true when a set with this label was replaced' }) replaced: boolean;
  @ApiProperty() label: string;
  @ApiProperty({ type: PromotedMachineDto }) machine: PromotedMachineDto;
  @ApiProperty({ description: 'the registration whose verified quote the values come from' }) registrationId: string;
  @ApiProperty({ description: 'when that quote was verified' }) evidenceAt: Date;
  @ApiProperty({ type: GroupPolicyDto }) policy: GroupPolicyDto;
}

export class ApprovePolicySetDto implements ApprovePolicySetRequest {
  @ApiProperty({ description: 'the set\'s label (a set with this label is replaced)', maxLength: MAX_POLICY_LABEL_LENGTH, example: 'kernel-6.10' })
  @IsString()
  @Length(1, MAX_POLICY_LABEL_LENGTH)
  @IsPrintableText()
  label: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'PCR index → hex digest of the policy\'s bank, exactly the policy\'s PCRs (checked with the whole policy)',
    example: { '4': 'ab'.repeat(32) },
  })
  @IsObject()
  values: Record<string, string>;
}

export class PolicySetChangeDto implements PolicySetChange<Date> {
  @ApiProperty() label: string;
  @ApiProperty({ description: 'approve: true when a set with this label was replaced; withdraw: false' }) replaced: boolean;
  @ApiProperty({ description: 'the group\'s approval epoch after the change (a withdrawal moves it on)' }) approvalEpoch: number;
  @ApiProperty({ type: GroupPolicyDto }) policy: GroupPolicyDto;
}

export class PolicyRemovalDto implements PolicyRemoval {
  @ApiProperty() group: string;
  @ApiProperty() removed: boolean;
}

export const GROUP_PARAM_DESCRIPTION = 'the machine group (1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -)';
