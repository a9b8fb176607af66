import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ATTESTATION_LIMITS,
  type FinishAttestationRequest,
  IMA_TEMPLATE_HASH_ALGORITHMS,
  type ImaTemplateHashAlgorithm,
  type FinishAttestationResponse,
  type ImaMeasurementsWire,
  type ImaOutcomeWire,
  type ImaRequestWire,
  type PcrSelectionWire,
  type PolicyOutcomeWire,
  type QuoteWire,
  type StartAttestationRequest,
  type StartAttestationResponse,
} from '@rackseal/node-api-contracts';
import { isPaddedBase64 } from '@rackseal/attestation';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBase64, IsDefined, IsIn, IsInt, IsObject, IsOptional, IsString, Max, MaxLength, Min, ValidateBy, ValidateNested } from 'class-validator';

/** Characters of base64 for `bytes` bytes: what a field may hold before the service decodes it. */
const b64 = (bytes: number): number => Math.ceil(bytes / 3) * 4;

export class StartAttestationDto implements StartAttestationRequest {
  @ApiPropertyOptional({ description: `The EK certificate, base64 DER (at most ${ATTESTATION_LIMITS.certificateBytes} bytes). Give it, ekPublic, or both (they must match).` })
  @IsOptional()
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.certificateBytes))
  @IsBase64()
  ekCertificate?: string;

  @ApiPropertyOptional({ type: [String], description: `Intermediates the TPM holds, base64 DER each, at most ${ATTESTATION_LIMITS.intermediates}.` })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(ATTESTATION_LIMITS.intermediates)
  @IsString({ each: true })
  @MaxLength(b64(ATTESTATION_LIMITS.certificateBytes), { each: true })
  @IsBase64(undefined, { each: true })
  ekIntermediates?: string[];

  @ApiPropertyOptional({ description: 'The EK public area, base64 TPM2B_PUBLIC (for inventory rows without a certificate).' })
  @IsOptional()
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.publicAreaBytes))
  @IsBase64()
  ekPublic?: string;

  @ApiProperty({ description: 'The AK public area, base64 TPM2B_PUBLIC: a restricted signing key under the EK.' })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.publicAreaBytes))
  @IsBase64()
  akPublic!: string;
}

export class PcrSelectionDto implements PcrSelectionWire {
  @ApiProperty({ example: 'sha256' })
  bank!: string;

  @ApiProperty({ type: [Number], example: [0, 1, 2, 3, 4, 5, 6, 7] })
  pcrs!: number[];
}

export class ImaRequestDto implements ImaRequestWire {
  @ApiProperty({ description: 'The first entry of the IMA measurement list to send (0: the whole list)', minimum: 0 })
  fromEntry!: number;
}

export class StartAttestationResponseDto implements StartAttestationResponse {
  @ApiProperty({ format: 'uuid' })
  registrationId!: string;

  @ApiProperty({ description: 'base64 TPM2B_ID_OBJECT (TPM2_MakeCredential credentialBlob)' })
  credentialBlob!: string;

  @ApiProperty({ description: 'base64 TPM2B_ENCRYPTED_SECRET (TPM2_MakeCredential secret)' })
  encryptedSecret!: string;

  @ApiProperty({ description: `base64, ${ATTESTATION_LIMITS.nonceBytes} bytes: the quote's qualifyingData` })
  nonce!: string;

  @ApiProperty({ type: PcrSelectionDto })
  pcrSelection!: PcrSelectionDto;

  @ApiProperty({ format: 'date-time' })
  deadline!: string;

  @ApiPropertyOptional({ type: ImaRequestDto, description: 'Present when the group has a runtime policy: PCR 10 is in the selection and the finish carries `ima`' })
  ima?: ImaRequestDto;
}

export class QuoteDto implements QuoteWire {
  @ApiProperty({ description: 'base64 TPMS_ATTEST as signed (tpm2_quote -m)' })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.attestBytes))
  @IsBase64()
  attest!: string;

  @ApiProperty({ description: 'base64 TPMT_SIGNATURE (tpm2_quote -s)' })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.signatureBytes))
  @IsBase64()
  signature!: string;
}

export class ImaMeasurementsDto implements ImaMeasurementsWire {
  @ApiProperty({ description: "Index of the first entry sent: the start answer's ima.fromEntry", minimum: 0 })
  @IsInt()
  @Min(0)
  @Max(Number.MAX_SAFE_INTEGER)
  firstEntry!: number;

  @ApiProperty({ description: `base64 of binary_runtime_measurements bytes from firstEntry on (empty: none), at most ${ATTESTATION_LIMITS.imaEntriesBytes} bytes` })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.imaEntriesBytes))
  // Base64 (RFC 4648 §4) or empty: no new entries since the last round.
  @ValidateBy({ name: 'isPaddedBase64', validator: { validate: (v: unknown) => typeof v === 'string' && isPaddedBase64(v), defaultMessage: (args) => `${args?.property ?? 'entries'} must be base64 (RFC 4648 §4, padded)` } })
  entries!: string;

  @ApiPropertyOptional({
    enum: IMA_TEMPLATE_HASH_ALGORITHMS,
    description: "The entries' template-hash algorithm: the bank's for a per-bank list (binary_runtime_measurements_<bank>). Absent: the runtime policy's ima.log_hash_alg (sha1 unless it says otherwise)",
  })
  @IsOptional()
  @IsIn(IMA_TEMPLATE_HASH_ALGORITHMS)
  templateHashAlgorithm?: ImaTemplateHashAlgorithm;
}

export class FinishAttestationDto implements FinishAttestationRequest {
  @ApiProperty({ description: 'base64, 32 bytes: activationProof(secret, registrationId, nonce) (libs/node-identity)' })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.activationProofBytes))
  @IsBase64()
  activationProof!: string;

  @ApiProperty({ type: QuoteDto })
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => QuoteDto)
  quote!: QuoteDto;

  @ApiProperty({ description: 'base64 of the quoted PCR values concatenated in selection order (tpm2_quote -o -F values)' })
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.pcrValuesBytes))
  @IsBase64()
  pcrValues!: string;

  @ApiPropertyOptional({ description: `base64 of the TCG event log (binary_bios_measurements), at most ${ATTESTATION_LIMITS.eventLogBytes} bytes` })
  @IsOptional()
  @IsString()
  @MaxLength(b64(ATTESTATION_LIMITS.eventLogBytes))
  @IsBase64()
  eventLog?: string;

  @ApiPropertyOptional({ type: ImaMeasurementsDto, description: 'The IMA entries the start answer asked for (ima.fromEntry)' })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ImaMeasurementsDto)
  ima?: ImaMeasurementsDto;
}

export class PolicyOutcomeDto implements PolicyOutcomeWire {
  @ApiProperty({ enum: ['match', 'mismatch'], description: '`mismatch` only in a warn group: attested, drift recorded' })
  decision!: 'match' | 'mismatch';

  @ApiPropertyOptional()
  matchedSet?: string;

  @ApiProperty({ type: [String] })
  summary!: string[];
}

export class ImaOutcomeDto implements ImaOutcomeWire {
  @ApiProperty({ enum: ['pass', 'fail'], description: '`fail` only in a warn group: attested, failures recorded' })
  decision!: 'pass' | 'fail';

  @ApiProperty({ description: 'Entries replayed and judged in this round' })
  entriesChecked!: number;

  @ApiProperty({ description: 'The entry the next round starts from (0: the whole list again)' })
  nextEntry!: number;

  @ApiProperty({ type: [String], description: 'One line per failed entry: index, file, digest, rule' })
  failures!: string[];
}

export class FinishAttestationResponseDto implements FinishAttestationResponse {
  @ApiProperty({ format: 'uuid' })
  machineId!: string;

  @ApiProperty({ enum: ['attested'] })
  state!: 'attested';

  @ApiProperty({ description: "The node credential's public ID (32 hex digits); both sides derive its key" })
  credentialId!: string;

  @ApiProperty({ format: 'date-time' })
  attestedAt!: string;

  @ApiProperty({ type: PolicyOutcomeDto })
  policy!: PolicyOutcomeDto;

  @ApiPropertyOptional({ type: ImaOutcomeDto, description: 'Present when the group has a runtime policy' })
  ima?: ImaOutcomeDto;
}
