import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  AUDIT_ACTION_MAX_LENGTH,
  AUDIT_ACTOR_MAX_LENGTH,
  AUDIT_LIST_ORDERS,
  AUDIT_OUTCOMES,
  AUDIT_SUBJECT_MAX_LENGTH,
  type AuditCheckpointView,
  type AuditConsistencyProofView,
  type AuditInclusionProofView,
  type AuditListFilters,
  type AuditListOrder,
  type AuditOutcome,
  type AuditPublicKeyView,
  type AuditRecordView,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  MAX_SEQUENCE_CURSOR,
  MIN_PAGE_SIZE,
} from '@rackseal/api-contracts';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { IsInstant, IsPrintableText, IsQueryInteger } from '../http/validators';

export class AuditQueryDto implements AuditListFilters {
  @ApiPropertyOptional({
    description: 'Only records appended after this id (for paging and tailing).',
    type: 'integer',
    default: 0,
    minimum: 0,
    maximum: MAX_SEQUENCE_CURSOR,
  })
  @IsOptional()
  @IsQueryInteger({ min: 0, max: MAX_SEQUENCE_CURSOR })
  after?: number;

  @ApiPropertyOptional({
    description: 'Only records appended before this id (for paging newest first: the id of the last record of the previous page).',
    type: 'integer',
    minimum: 1,
    maximum: MAX_SEQUENCE_CURSOR,
  })
  @IsOptional()
  @IsQueryInteger({ min: 1, max: MAX_SEQUENCE_CURSOR })
  before?: number;

  @ApiPropertyOptional({ enum: AUDIT_LIST_ORDERS, default: 'oldest', description: 'oldest first (append order) or newest first.' })
  @IsOptional()
  @IsIn(AUDIT_LIST_ORDERS)
  order?: AuditListOrder;

  @ApiPropertyOptional({ type: 'integer', default: DEFAULT_PAGE_SIZE, minimum: MIN_PAGE_SIZE, maximum: MAX_PAGE_SIZE })
  @IsOptional()
  @IsQueryInteger({ min: MIN_PAGE_SIZE, max: MAX_PAGE_SIZE })
  limit?: number;

  @ApiPropertyOptional({ description: 'Only records by this actor (exact), e.g. token:3 or system:worker.', maxLength: AUDIT_ACTOR_MAX_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(AUDIT_ACTOR_MAX_LENGTH)
  @IsPrintableText()
  actor?: string;

  @ApiPropertyOptional({ description: 'Only records of this action (exact), e.g. machine.state-changed.', maxLength: AUDIT_ACTION_MAX_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(AUDIT_ACTION_MAX_LENGTH)
  @IsPrintableText()
  action?: string;

  @ApiPropertyOptional({ description: 'Only records about this subject (exact), e.g. machine:SN-1.', maxLength: AUDIT_SUBJECT_MAX_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(AUDIT_SUBJECT_MAX_LENGTH)
  @IsPrintableText()
  subject?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Only records recorded at or after this instant (RFC 3339 with an offset).' })
  @IsOptional()
  @IsInstant()
  since?: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'Only records recorded before this instant (RFC 3339 with an offset).' })
  @IsOptional()
  @IsInstant()
  until?: string;
}

export class AuditSeqParamDto {
  @ApiProperty({ description: 'Tree position of the record (leaf index + 1).', type: 'integer', minimum: 1, maximum: MAX_SEQUENCE_CURSOR })
  @IsQueryInteger({ min: 1, max: MAX_SEQUENCE_CURSOR })
  seq: number;
}

export class AuditProofQueryDto {
  @ApiPropertyOptional({ description: 'Size of a signed checkpoint to prove against; default the latest.', type: 'integer', minimum: 1, maximum: MAX_SEQUENCE_CURSOR })
  @IsOptional()
  @IsQueryInteger({ min: 1, max: MAX_SEQUENCE_CURSOR })
  size?: number;
}

export class AuditConsistencyQueryDto {
  @ApiProperty({ description: 'The smaller tree size (the operator\'s saved checkpoint).', type: 'integer', minimum: 1, maximum: MAX_SEQUENCE_CURSOR })
  @IsQueryInteger({ min: 1, max: MAX_SEQUENCE_CURSOR })
  from: number;

  @ApiPropertyOptional({ description: 'Size of a signed checkpoint; default the latest.', type: 'integer', minimum: 1, maximum: MAX_SEQUENCE_CURSOR })
  @IsOptional()
  @IsQueryInteger({ min: 1, max: MAX_SEQUENCE_CURSOR })
  to?: number;
}

export class AuditRecordDto implements AuditRecordView {
  @ApiProperty({ description: 'Append order; the paging cursor' })
  id: number;

  @ApiProperty({ type: 'integer', nullable: true, description: 'Tree position (leaf index + 1); null while pending' })
  seq: number | null;

  @ApiProperty({ description: 'ISO 8601 as the leaf covers it: milliseconds, or six fractional digits for a stored value with microseconds' })
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

  @ApiProperty({ type: 'string', nullable: true, description: 'hex RFC 9162 leaf hash; null while pending' })
  leafHash: string | null;
}

export class AuditCheckpointDto implements AuditCheckpointView {
  @ApiProperty()
  origin: string;

  @ApiProperty()
  treeSize: number;

  @ApiProperty({ description: 'hex' })
  rootHash: string;

  @ApiProperty()
  signedAt: string;

  @ApiProperty({ description: '8 hex digits' })
  keyId: string;

  @ApiProperty({ description: 'the C2SP signed note, exactly as signed' })
  note: string;
}

export class AuditPublicKeyDto implements AuditPublicKeyView {
  @ApiProperty()
  keyId: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ description: 'base64 Ed25519 public key' })
  publicKey: string;

  @ApiProperty({ description: 'signed-note verifier key' })
  verifierKey: string;

  @ApiProperty()
  createdAt: string;
}

export class AuditInclusionProofDto implements AuditInclusionProofView {
  @ApiProperty({ type: AuditRecordDto })
  record: AuditRecordDto;

  @ApiProperty()
  treeSize: number;

  @ApiProperty({ type: [String], description: 'hex hashes, bottom up (RFC 9162 §2.1.3.1)' })
  proof: string[];

  @ApiProperty({ type: AuditCheckpointDto })
  checkpoint: AuditCheckpointDto;
}

export class AuditConsistencyProofDto implements AuditConsistencyProofView {
  @ApiProperty()
  from: number;

  @ApiProperty()
  to: number;

  @ApiProperty({ type: [String], description: 'hex hashes (RFC 9162 §2.1.4.1)' })
  proof: string[];

  @ApiProperty({ type: AuditCheckpointDto })
  checkpoint: AuditCheckpointDto;
}
