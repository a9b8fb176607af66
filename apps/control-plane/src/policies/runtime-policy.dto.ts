import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  type GroupRuntimePolicy,
  MAX_POLICY_MACHINE_REF_LENGTH,
  POLICY_MODES,
  type PolicyMode,
  type RuntimeFailureView,
  type RuntimePolicyFromMachineRequest,
  type RuntimePolicyRemoval,
  type RuntimeVerdictView,
  type SetRuntimePolicyRequest,
} from '@rackseal/api-contracts';
import { ArrayMaxSize, IsArray, IsIn, IsObject, IsOptional, IsString, Length, MaxLength } from 'class-validator';
import { IsPrintableText } from '../http/validators';

/** The excludes a from-machine request may add, each at most libs/ima's pattern length. */
const MAX_EXCLUDES = 1024;
const MAX_EXCLUDE_LENGTH = 1024;

export class SetRuntimePolicyDto implements SetRuntimePolicyRequest {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'A Keylime runtime policy (keylime-policy create runtime): meta, release, digests, excludes, keyrings, ima, ima-buf, verification-keys. Validated by libs/ima; unknown fields are refused.',
  })
  @IsObject()
  policy: Record<string, unknown>;

  @ApiPropertyOptional({ enum: POLICY_MODES, description: 'enforce (default): a failing IMA list quarantines the machine; warn: it is recorded' })
  @IsOptional()
  @IsIn(POLICY_MODES)
  mode?: PolicyMode;
}

export class RuntimePolicyFromMachineDto implements RuntimePolicyFromMachineRequest {
  @ApiProperty({ description: 'the canary: machine id (UUID) or serial, of the group', maxLength: MAX_POLICY_MACHINE_REF_LENGTH })
  @IsString()
  @Length(1, MAX_POLICY_MACHINE_REF_LENGTH)
  @IsPrintableText()
  machine: string;

  @ApiPropertyOptional({ enum: POLICY_MODES, description: 'enforce (default) or warn' })
  @IsOptional()
  @IsIn(POLICY_MODES)
  mode?: PolicyMode;

  @ApiPropertyOptional({ type: [String], description: 'Keylime excludes to add (Python regular expressions without backtracking constructs)' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_EXCLUDES)
  @IsString({ each: true })
  @MaxLength(MAX_EXCLUDE_LENGTH, { each: true })
  excludes?: string[];
}

export class GroupRuntimePolicyDto implements GroupRuntimePolicy<Date> {
  @ApiProperty() group: string;
  @ApiProperty({ enum: POLICY_MODES }) mode: PolicyMode;
  @ApiProperty({ description: 'lowercase hex SHA-256 of the policy JSON as stored (named by audit records and verdicts)' }) sha256: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'the Keylime runtime policy as stored' }) policy: Record<string, unknown>;
  @ApiProperty({ description: 'files with allowed digests' }) paths: number;
  @ApiProperty({ description: 'exclude patterns' }) excludes: number;
  @ApiProperty() updatedAt: Date;
  @ApiProperty({ description: 'e.g. token:<id>' }) updatedBy: string;
}

export class RuntimePolicyRemovalDto implements RuntimePolicyRemoval {
  @ApiProperty() group: string;
  @ApiProperty() removed: boolean;
}

export class RuntimeFailureDto implements RuntimeFailureView {
  @ApiProperty({ description: 'the entry\'s index in the measurement list' }) index: number;
  @ApiProperty({ example: 'not-in-allowlist' }) kind: string;
  @ApiProperty({ example: '/usr/bin/evil' }) path: string;
  @ApiProperty({ example: 'sha256:' + 'ab'.repeat(32) }) digest: string;
  @ApiProperty({ example: 'digests' }) rule: string;
  @ApiPropertyOptional({ type: [String] }) expected?: string[];
}

export class RuntimeVerdictDto implements RuntimeVerdictView {
  @ApiProperty() at: string;
  @ApiProperty({ format: 'uuid' }) registrationId: string;
  @ApiProperty({ enum: ['pass', 'fail'] }) decision: 'pass' | 'fail';
  @ApiProperty({ enum: POLICY_MODES }) mode: PolicyMode;
  @ApiProperty() policySha256: string;
  @ApiPropertyOptional({ description: 'why the round failed when no single entry says it' }) reason?: string;
  @ApiProperty() firstEntry: number;
  @ApiProperty() entriesChecked: number;
  @ApiProperty() nextEntry: number;
  @ApiProperty() failureCount: number;
  @ApiProperty({ type: RuntimeFailureDto, isArray: true, description: 'the first 50' }) failures: RuntimeFailureDto[];
}
