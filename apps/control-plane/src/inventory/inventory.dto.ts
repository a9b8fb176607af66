import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import {
  DEFAULT_PAGE_SIZE,
  GROUP_PATTERN,
  GROUP_RULE,
  IMPORT_RECORD_STATUSES,
  IMPORT_STATUSES,
  type ImportCounts,
  type ImportRecordStatus,
  type ImportStatus,
  type ImportSummary,
  type Machine,
  MACHINE_STATES,
  type MachineState,
  MAX_IMPORT_FILE_NAME_LENGTH,
  MAX_PAGE_SIZE,
  MAX_TEXT_CURSOR_LENGTH,
  MIN_PAGE_SIZE,
  type RecordedImport,
  type RowProblem,
  ROW_PROBLEM_REASONS,
  type RowProblemReason,
} from '@rackseal/api-contracts';
import { PRINTABLE_LABEL } from '@rackseal/vendor-cas';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { IsPrintableText, IsQueryInteger } from '../http/validators';

export class ImportQueryDto {
  @ApiPropertyOptional({ enum: ['true', 'false'], description: 'Validate everything, write nothing.' })
  @IsOptional()
  @IsIn(['true', 'false'])
  dryRun?: 'true' | 'false';

  @ApiPropertyOptional({ enum: ['true', 'false'], description: 'Land the valid rows even if some are refused (default: all or nothing).' })
  @IsOptional()
  @IsIn(['true', 'false'])
  partial?: 'true' | 'false';

  @ApiPropertyOptional({ description: 'Group for rows whose group cell is empty.' })
  @IsOptional()
  @Matches(GROUP_PATTERN, { message: GROUP_RULE })
  group?: string;

  @ApiPropertyOptional({ description: `The uploaded file name, kept on the import record (printable text, at most ${MAX_IMPORT_FILE_NAME_LENGTH} characters).` })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_IMPORT_FILE_NAME_LENGTH)
  // a label stored and shown like a CA's source: NUL cannot reach PostgreSQL, escapes must not reach a terminal
  @Matches(PRINTABLE_LABEL, { message: 'fileName must not contain control characters' })
  fileName?: string;
}

export class RowProblemDto implements RowProblem {
  @ApiProperty({ description: 'line the row starts on (the header is line 1)' })
  line: number;

  @ApiProperty({ enum: ROW_PROBLEM_REASONS })
  reason: RowProblemReason;

  @ApiProperty()
  message: string;

  @ApiPropertyOptional()
  serial?: string;
}

export class ImportCountsDto implements ImportCounts {
  @ApiProperty() rows: number;
  @ApiProperty() valid: number;
  @ApiProperty() invalid: number;
  @ApiProperty() created: number;
  @ApiProperty() updated: number;
  @ApiProperty() unchanged: number;
}

export class ImportSummaryDto implements ImportSummary {
  @ApiProperty({ nullable: true, type: String, description: 'null for a dry run (nothing is recorded)' })
  id: string | null;

  @ApiProperty({ enum: IMPORT_STATUSES })
  status: ImportStatus;

  @ApiProperty() dryRun: boolean;
  @ApiProperty() partial: boolean;
  @ApiProperty({ nullable: true, type: String }) fileName: string | null;
  @ApiProperty({ type: ImportCountsDto }) counts: ImportCountsDto;
  @ApiProperty({ type: RowProblemDto, isArray: true, description: 'in line order; at most 1000' }) problems: RowProblemDto[];
  @ApiProperty({ description: 'more problems than listed (counts.invalid has them all)' }) problemsTruncated: boolean;
  @ApiProperty() startedAt: string;
  @ApiProperty() finishedAt: string;
}

/** GET /v1/inventory/imports/:id: the summary as recorded (a record may still be running, or have failed), with who ran it. */
export class RecordedImportDto extends OmitType(ImportSummaryDto, ['status'] as const) implements RecordedImport {
  @ApiProperty({ enum: IMPORT_RECORD_STATUSES })
  status: ImportRecordStatus;

  @ApiProperty({ description: 'the audit actor that ran the import, e.g. token:<id>' })
  startedBy: string;
}

export class MachinesQueryDto {
  @ApiPropertyOptional({ description: 'Only machines of this group.' })
  @IsOptional()
  @Matches(GROUP_PATTERN, { message: GROUP_RULE })
  group?: string;

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

export class MachineDto implements Machine {
  @ApiProperty() id: string;
  @ApiProperty() serial: string;
  @ApiProperty({ nullable: true, type: String }) assetTag: string | null;
  @ApiProperty({ nullable: true, type: String }) hostname: string | null;
  @ApiProperty({ nullable: true, type: String }) group: string | null;
  @ApiProperty() ekPubHash: string;
  @ApiProperty({ nullable: true, type: String, description: 'SHA-256 of the EK certificate DER; null when imported by ek_pub_hash' })
  ekCertFingerprint: string | null;
  @ApiProperty({ enum: MACHINE_STATES }) state: MachineState;
  @ApiProperty() importedAt: string;
  @ApiProperty() updatedAt: string;
  @ApiProperty({ nullable: true, type: String }) importId: string | null;
}
