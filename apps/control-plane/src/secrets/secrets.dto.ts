import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  CLUSTER_CA_KINDS,
  type ClusterCaKind,
  type ClusterCaView,
  type CreateSecretRequest,
  DEFAULT_PAGE_SIZE,
  DISK_KEY_SIZES,
  type ImportClusterCaRequest,
  MAX_OPAQUE_BYTES,
  MAX_ROTATE_EVERY_DAYS,
  DEFAULT_DISK_ROTATE_EVERY_DAYS,
  MAX_PAGE_SIZE,
  MAX_SAN_TEMPLATES,
  MAX_TEXT_CURSOR_LENGTH,
  MAX_VALIDITY_DAYS,
  MIN_PAGE_SIZE,
  MIN_VALIDITY_DAYS,
  type RotateSecretRequest,
  SAN_PLACEHOLDERS,
  SECRET_BINDINGS,
  SECRET_KEY_ALGORITHMS,
  SECRET_KINDS,
  type SecretBinding,
  type SecretKeyAlgorithm,
  type SecretKind,
  type SecretMaterialSummary,
  type SecretParameters,
  type SecretTarget,
  type SecretVersionDetail,
  type SecretVersionSummary,
  type SecretView,
} from '@rackseal/api-contracts';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { IsPrintableText, IsQueryInteger } from '../http/validators';

/*
 * Documentation of the secret and CA bodies. The bodies themselves are validated as a whole by
 * libs/secrets (parseCreateRequest, ClusterCas.import), so that every refusal is audited and names
 * its field; these classes only describe them to OpenAPI.
 */

export class SecretTargetDto implements SecretTarget {
  @ApiPropertyOptional({ description: 'a machine group: every attested machine of it gets material (later ones when they attest)' }) group?: string;
  @ApiPropertyOptional({ description: 'one machine: its id (UUID) or serial' }) machine?: string;
}

export class SecretParametersDto implements SecretParameters {
  @ApiPropertyOptional({
    type: [String],
    maxItems: MAX_SAN_TEMPLATES,
    description: `tls (required): SAN templates, each rendering to a DNS name per machine; placeholders ${SAN_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}. The first is also the subject CN.`,
    example: ['{hostname}.{group}.cluster.internal'],
  })
  sans?: string[];
  @ApiPropertyOptional({ type: 'integer', minimum: MIN_VALIDITY_DAYS, maximum: MAX_VALIDITY_DAYS, default: 90, description: 'tls, kubelet-client: certificate validity' }) validityDays?: number;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, description: 'tls, kubelet-client: renew this many days before notAfter (default min(30, validity/3))' }) renewBeforeDays?: number;
  @ApiPropertyOptional({ enum: SECRET_KEY_ALGORITHMS, default: SECRET_KEY_ALGORITHMS[0], description: 'tls, kubelet-client: the machine\'s key pair' }) keyAlgorithm?: SecretKeyAlgorithm;
  @ApiPropertyOptional({ type: 'integer', description: `disk: ${DISK_KEY_SIZES.join(' or ')} bytes (default 32); opaque (generated): 1-${MAX_OPAQUE_BYTES} bytes (default 32)` }) size?: number;
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: MAX_ROTATE_EVERY_DAYS, default: DEFAULT_DISK_ROTATE_EVERY_DAYS, description: 'disk: a new key every this many days (the worker\'s schedule); 0: on demand only' })
  rotateEveryDays?: number;
  @ApiPropertyOptional({ description: 'kubelet-client (required): the API server\'s https URL', example: 'https://10.0.0.1:6443' }) server?: string;
  @ApiPropertyOptional({ default: 'kubernetes', description: 'kubelet-client: the cluster\'s name in kubelet.conf' }) clusterName?: string;
}

export class CreateSecretDto implements CreateSecretRequest {
  @ApiProperty({ description: '1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -', example: 'etcd-peer' }) name: string;
  @ApiProperty({ enum: SECRET_KINDS }) kind: SecretKind;
  @ApiProperty({ type: SecretTargetDto, description: 'exactly one of group and machine' }) target: SecretTargetDto;
  @ApiProperty({ enum: SECRET_BINDINGS, description: 'how deliveries wrap the material to the machine\'s TPM' }) binding: SecretBinding;
  @ApiPropertyOptional({ type: SecretParametersDto }) parameters?: SecretParametersDto;
  @ApiPropertyOptional({ description: `opaque only: the value, base64 (1-${MAX_OPAQUE_BYTES} bytes); absent, the server generates parameters.size random bytes. Never answered, logged or audited.` }) value?: string;
}

export class RotateSecretDto implements RotateSecretRequest {
  @ApiPropertyOptional({ description: 'opaque only: the new version\'s value, base64; absent, a generated one' }) value?: string;
  @ApiPropertyOptional({ description: 'the target group the caller expects: 409 secret.wrong-group when the secret targets another, 400 for a machine-targeted secret' }) group?: string;
  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'the version the caller saw as the latest: 409 secret.version-changed, nothing rotated, when another rotation made a newer one first' }) fromVersion?: number;
}

class RotationRequiredDto {
  @ApiProperty() since: Date;
  @ApiProperty() reason: string;
}

export class SecretVersionSummaryDto implements SecretVersionSummary<Date> {
  @ApiProperty() version: number;
  @ApiProperty() createdAt: Date;
  @ApiProperty() createdBy: string;
  @ApiProperty({ description: 'machines holding material of this version (0 for opaque: one value for the target)' }) machines: number;
}

class SecretTargetViewDto {
  @ApiProperty({ nullable: true, type: String }) group: string | null;
  @ApiProperty({ nullable: true, type: String }) machineId: string | null;
  @ApiProperty({ nullable: true, type: String }) serial: string | null;
}

export class SecretViewDto implements SecretView<Date> {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: SECRET_KINDS }) kind: SecretKind;
  @ApiProperty({ type: SecretTargetViewDto }) target: SecretTargetViewDto;
  @ApiProperty({ enum: SECRET_BINDINGS }) binding: SecretBinding;
  @ApiProperty({ type: SecretParametersDto, description: 'as stored, defaults filled in; never material' }) parameters: SecretParametersDto;
  @ApiProperty() createdAt: Date;
  @ApiProperty() createdBy: string;
  @ApiProperty({ type: SecretVersionSummaryDto }) latestVersion: SecretVersionSummaryDto;
  @ApiProperty({ type: RotationRequiredDto, nullable: true, description: 'a revoked machine held this shared uploaded value: upload a new one (rackseal secrets rotate NAME --value-file)' })
  rotationRequired: RotationRequiredDto | null;
}

export class SecretMaterialSummaryDto implements SecretMaterialSummary<Date> {
  @ApiProperty() machineId: string;
  @ApiProperty() serial: string;
  @ApiProperty() createdAt: Date;
  @ApiProperty({ nullable: true, type: String, description: 'certificate kinds: the serial number, lowercase hex' }) certificateSerial: string | null;
  @ApiProperty({ nullable: true, type: Date }) notAfter: Date | null;
}

export class SecretVersionDetailDto extends SecretVersionSummaryDto implements SecretVersionDetail<Date> {
  @ApiProperty({ nullable: true, type: Date, description: 'when every delivery of a newer version was acked' }) retiredAt: Date | null;
  @ApiProperty({ type: SecretMaterialSummaryDto, isArray: true }) materials: SecretMaterialSummaryDto[];
}

export class SecretsQueryDto {
  @ApiPropertyOptional({ description: 'Only names after this one (paging: pass the last name of the previous page).', maxLength: MAX_TEXT_CURSOR_LENGTH })
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

export class ImportClusterCaDto implements ImportClusterCaRequest {
  @ApiProperty({ description: 'the CA certificate, PEM (one certificate, basicConstraints cA TRUE)' }) certificate: string;
  @ApiProperty({ description: 'its private key, PEM (PKCS#8, SEC1 or PKCS#1, unencrypted; RSA >= 2048 or ECDSA P-256/384/521). Sealed at once, never answered, logged or audited.' }) privateKey: string;
}

export class ClusterCaViewDto implements ClusterCaView<Date> {
  @ApiProperty({ enum: CLUSTER_CA_KINDS }) kind: ClusterCaKind;
  @ApiProperty({ enum: ['created', 'imported'] }) origin: 'created' | 'imported';
  @ApiProperty() subject: string;
  @ApiProperty({ description: 'lowercase hex SHA-256 of the certificate DER' }) fingerprint: string;
  @ApiProperty({ example: 'ecdsa-p384' }) keyAlgorithm: string;
  @ApiProperty() notBefore: Date;
  @ApiProperty() notAfter: Date;
  @ApiProperty() createdAt: Date;
  @ApiProperty() createdBy: string;
  @ApiProperty({ description: 'the CA certificate, PEM' }) certificate: string;
}

export const CA_KIND_DESCRIPTION = `the cluster CA: ${CLUSTER_CA_KINDS.join(' or ')}`;
export const SECRET_NAME_DESCRIPTION = 'the secret\'s name';
