import { ApiProperty } from '@nestjs/swagger';
import { CERTIFIED_KEY_RETIRED_REASONS, type CertifiedKey, type CertifiedKeyRetiredReason } from '@rackseal/api-contracts';

/** One of a machine's certified keys (GET /v1/machines/:ref/keys); Dates serialise to ISO 8601. */
export class CertifiedKeyDto implements CertifiedKey<Date> {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) machineId: string;
  @ApiProperty({ description: "the key's Name (nameAlg ‖ digest of its public area), lowercase hex" }) name: string;
  @ApiProperty({ example: 'rsa-2048' }) algorithm: string;
  @ApiProperty({ description: "the key's TPMT_PUBLIC, base64, as the TPM marshalled it" }) publicArea: string;
  @ApiProperty({ format: 'uuid', description: 'the attestation registration whose AK certified the key' }) registrationId: string;
  @ApiProperty({ description: 'the node credential that sent the certification' }) credentialId: string;
  @ApiProperty() certifiedAt: Date;
  @ApiProperty({ nullable: true, type: Date, description: "null while the key is the machine's live key" }) retiredAt: Date | null;
  @ApiProperty({ nullable: true, enum: CERTIFIED_KEY_RETIRED_REASONS, type: String }) retiredReason: CertifiedKeyRetiredReason | null;
}
