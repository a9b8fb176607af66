import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  CERTIFIED_KEY_ALGORITHMS,
  type CertifiedKeyAlgorithm,
  type CertifiedKeyResponse,
  type CertifyKeyRequest,
  KEY_CERTIFICATION_LIMITS,
  type KeyChallengeResponse,
} from '@rackseal/node-api-contracts';
import { IsBase64, IsString, MaxLength } from 'class-validator';

/** Characters of base64 for `bytes` bytes: what a field may hold before the service decodes it. */
const b64 = (bytes: number): number => Math.ceil(bytes / 3) * 4;

export class KeyChallengeResponseDto implements KeyChallengeResponse {
  @ApiProperty({ description: `base64, ${KEY_CERTIFICATION_LIMITS.nonceBytes} bytes: TPM2_Certify's qualifyingData, single-use` })
  nonce!: string;

  @ApiProperty({ format: 'date-time', description: 'The certify call must arrive before this.' })
  deadline!: string;
}

export class CertifyKeyDto implements CertifyKeyRequest {
  @ApiProperty({ description: "base64 TPM2B_PUBLIC of the key as TPM2_Create returned it (tpm2_create -u): its Name is hashed from these bytes" })
  @IsString()
  @MaxLength(b64(KEY_CERTIFICATION_LIMITS.publicAreaBytes))
  @IsBase64()
  keyPublic!: string;

  @ApiProperty({ description: 'base64 TPMS_ATTEST of the TPM2_Certify as signed (tpm2_certify -o), extraData = the challenge nonce' })
  @IsString()
  @MaxLength(b64(KEY_CERTIFICATION_LIMITS.attestBytes))
  @IsBase64()
  attest!: string;

  @ApiProperty({ description: 'base64 TPMT_SIGNATURE by the AK of the current attestation (tpm2_certify -s)' })
  @IsString()
  @MaxLength(b64(KEY_CERTIFICATION_LIMITS.signatureBytes))
  @IsBase64()
  signature!: string;
}

export class CertifiedKeyResponseDto implements CertifiedKeyResponse {
  @ApiProperty({ format: 'uuid' })
  keyId!: string;

  @ApiProperty({ description: "The key's Name (nameAlg ‖ digest), lowercase hex" })
  name!: string;

  @ApiProperty({ enum: CERTIFIED_KEY_ALGORITHMS })
  algorithm!: CertifiedKeyAlgorithm;

  @ApiProperty({ format: 'date-time' })
  certifiedAt!: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The key this certification retired (rotation)' })
  retiredKeyId?: string;
}
