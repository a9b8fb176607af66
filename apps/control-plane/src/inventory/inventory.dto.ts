import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import {
  GROUP_PATTERN,
  GROUP_RULE,
  IMPORT_RECORD_STATUSES,
  IMPORT_STATUSES,
  type ImportCounts,
  type ImportRecordStatus,
  type ImportStatus,
  type ImportSummary,
  MAX_IMPORT_FILE_NAME_LENGTH,
  type RecordedImport,
  type RowProblem,
  ROW_PROBLEM_REASONS,
  type RowProblemReason,
} from '@rackseal/api-contracts';
import { PRINTABLE_LABEL } from '@rackseal/vendor-cas';
import { IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

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
