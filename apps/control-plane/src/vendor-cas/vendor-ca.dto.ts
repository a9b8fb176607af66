import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  type AddVendorCasRequest,
  CA_KINDS,
  type CaKind,
  MAX_CA_SOURCE_LENGTH,
  MAX_FILE_CHARS,
  MAX_PEM_CHARS,
  MAX_UPLOAD_FILES,
  type SetAnchorRequest,
  VENDOR_CA_ADD_STATUSES,
  VENDOR_CA_DUPLICATE_OF,
  type VendorCaAddResult,
  type VendorCaAddStatus,
  type VendorCaAddSummary,
  type VendorCaChainStatus,
  type VendorCaChange,
  type VendorCaDuplicateOf,
  type VendorCaFile,
  type VendorCaSummary,
} from '@rackseal/api-contracts';
import { PRINTABLE_LABEL } from '@rackseal/vendor-cas';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsIn, IsOptional, IsString, Length, Matches, ValidateNested } from 'class-validator';

/** Labels are stored and shown on operators' terminals: control characters (NUL, ANSI escapes, line breaks) are refused. */
const PRINTABLE = { message: '$property must not contain control characters (NUL, escape sequences, line breaks, bidirectional controls)' };

export class VendorCaFileDto implements VendorCaFile {
  @ApiProperty({ description: 'File name, kept as the CA\'s source', example: 'IFX_RSA_RT.pem' })
  @IsString()
  @Length(1, MAX_CA_SOURCE_LENGTH)
  @Matches(PRINTABLE_LABEL, PRINTABLE)
  name: string;

  @ApiProperty({ description: 'The file: PEM text (one or many certificates) or base64 of DER', maxLength: MAX_FILE_CHARS })
  @IsString()
  @Length(1, MAX_FILE_CHARS)
  content: string;
}

/** Exactly one of `pem` (a pasted bundle) or `files` (a directory upload). */
export class AddVendorCasDto implements AddVendorCasRequest {
  @ApiPropertyOptional({ description: 'One or many PEM certificates', maxLength: MAX_PEM_CHARS })
  @IsOptional()
  @IsString()
  @Length(1, MAX_PEM_CHARS)
  pem?: string;

  @ApiPropertyOptional({ type: VendorCaFileDto, isArray: true, maxItems: MAX_UPLOAD_FILES })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_UPLOAD_FILES)
  @ValidateNested({ each: true })
  @Type(() => VendorCaFileDto)
  files?: VendorCaFileDto[];

  @ApiPropertyOptional({ description: 'Label for a `pem` upload (e.g. the bundle\'s file name)', example: 'vendor-bundle.pem' })
  @IsOptional()
  @IsString()
  @Length(1, MAX_CA_SOURCE_LENGTH)
  @Matches(PRINTABLE_LABEL, PRINTABLE)
  source?: string;

  @ApiPropertyOptional({
    description: 'Pin every intermediate of this upload as a trust anchor (a vendor root cross-signed by a CA you do not have). Roots are anchors anyway.',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  anchor?: boolean;
}

/** The OpenAPI schema of VendorCaChainStatus (a union: a class can describe it, not implement it). */
export class VendorCaChainDto {
  @ApiProperty()
  ok: boolean;

  @ApiPropertyOptional({ description: 'subject of the anchor reached (ok)' })
  anchor?: string;

  @ApiPropertyOptional()
  anchorFingerprint?: string;

  @ApiPropertyOptional({ description: 'why not (not ok), e.g. untrusted-root, expired' })
  reason?: string;

  @ApiPropertyOptional()
  message?: string;
}

export class VendorCaAddResultDto implements VendorCaAddResult {
  @ApiProperty({ enum: VENDOR_CA_ADD_STATUSES })
  status: VendorCaAddStatus;

  @ApiProperty({ nullable: true, type: String, description: 'the file (or `source`) it came from' })
  source: string | null;

  @ApiProperty({ description: '1-based position of the certificate in its file' })
  position: number;

  @ApiProperty({ description: 'lowercase hex SHA-256 of the DER' })
  fingerprint: string;

  @ApiProperty()
  subject: string;

  @ApiPropertyOptional({ enum: CA_KINDS })
  kind?: CaKind;

  @ApiPropertyOptional()
  anchor?: boolean;

  @ApiPropertyOptional()
  enabled?: boolean;

  @ApiPropertyOptional({ enum: VENDOR_CA_DUPLICATE_OF })
  duplicateOf?: VendorCaDuplicateOf;

  @ApiPropertyOptional({ description: 'rejected: not-a-ca | unsupported-key' })
  reason?: string;

  @ApiPropertyOptional()
  message?: string;

  @ApiPropertyOptional({ type: VendorCaChainDto, description: 'intermediates that are not anchors: whether they chain to an enabled anchor now' })
  chain?: VendorCaChainStatus;
}

export class VendorCaAddResponseDto implements VendorCaAddSummary {
  @ApiProperty()
  added: number;

  @ApiProperty()
  duplicate: number;

  @ApiProperty()
  rejected: number;

  @ApiProperty({ type: VendorCaAddResultDto, isArray: true })
  results: VendorCaAddResultDto[];
}

/** Dates here: Nest serialises them to ISO 8601, the wire shape VendorCaSummary declares. */
export class VendorCaDto implements VendorCaSummary<Date> {
  @ApiProperty()
  id: string;

  @ApiProperty({ description: 'lowercase hex SHA-256 of the DER' })
  fingerprint: string;

  @ApiProperty()
  subject: string;

  @ApiProperty()
  issuer: string;

  @ApiProperty({ description: 'hex of the serial number as encoded' })
  serial: string;

  @ApiProperty()
  notBefore: Date;

  @ApiProperty()
  notAfter: Date;

  @ApiProperty({ enum: CA_KINDS })
  kind: CaKind;

  @ApiProperty({ description: 'chains may end here (roots, pinned intermediates)' })
  anchor: boolean;

  @ApiProperty()
  enabled: boolean;

  @ApiProperty({ nullable: true, type: String })
  source: string | null;

  @ApiProperty()
  addedAt: Date;

  @ApiProperty()
  addedBy: string;

  @ApiProperty({ nullable: true, type: Date })
  disabledAt: Date | null;

  @ApiProperty({ nullable: true, type: String })
  disabledBy: string | null;
}

export class ListVendorCasQueryDto {
  @ApiPropertyOptional({ description: 'include disabled CAs', default: false })
  @IsOptional()
  @IsIn(['true', 'false'])
  includeDisabled?: 'true' | 'false';
}

export class SetAnchorDto implements SetAnchorRequest {
  @ApiProperty({ description: 'pin (true) or unpin (false) this intermediate as a trust anchor' })
  @IsBoolean()
  anchor: boolean;
}

export class VendorCaChangeDto implements VendorCaChange<Date> {
  @ApiProperty({ description: 'false when the CA was already in the requested state (nothing written)' })
  changed: boolean;

  @ApiProperty({ type: VendorCaDto })
  ca: VendorCaDto;
}

export const FINGERPRINT_PARAM_DESCRIPTION =
  'SHA-256 fingerprint (64 hex digits, any case, colons allowed), a unique prefix of it (at least 8 hex digits, as `vendor-ca add` prints 16), or the CA id';
