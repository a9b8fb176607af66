import { ApiProperty } from '@nestjs/swagger';
import type { ApprovalsResponse, MachinePrewraps, PrewrappedDiskKey } from '@rackseal/node-api-contracts';

/** OpenAPI shape of one provisioning file (libs/node-api-contracts PrewrappedDiskKey). */
export class PrewrappedDiskKeyDto implements PrewrappedDiskKey {
  @ApiProperty({ enum: [1] }) format: 1;
  @ApiProperty({ enum: ['rackseal-prewrapped-disk-key'] }) type: 'rackseal-prewrapped-disk-key';
  @ApiProperty({ description: '{ serial, ekPubHash }: the machine whose TPM opens the envelope' }) machine: { serial: string; ekPubHash: string };
  @ApiProperty({ description: 'the disk secret (the LUKS2 token names it)' }) secret: string;
  @ApiProperty() version: number;
  @ApiProperty({ description: "the key's generation (= version), the LUKS2 token's" }) generation: number;
  @ApiProperty({ description: 'the pre-wrap delivery, delivered again under this id once the machine attests' }) deliveryId: string;
  @ApiProperty({ description: 'the PCR-sealed envelope to the inventory EK, base64' }) envelope: string;
  @ApiProperty({ description: "the group's signed approvals of the envelope's epoch (as GET /node/v1/approvals answers them)" }) approvals: ApprovalsResponse;
}

export class MachinePrewrapsDto implements MachinePrewraps {
  @ApiProperty({ description: '{ id, serial, group, ekPubHash }' }) machine: { id: string; serial: string; group: string | null; ekPubHash: string };
  @ApiProperty({ type: PrewrappedDiskKeyDto, isArray: true }) prewraps: PrewrappedDiskKeyDto[];
}
