import { ApiProperty } from '@nestjs/swagger';
import type { ApprovalsResponse, PcrApproval } from '@rackseal/node-api-contracts';

export class PcrApprovalDto implements PcrApproval {
  @ApiProperty({ description: 'The allowed set\'s label in the group\'s policy.' })
  label!: string;

  @ApiProperty({ description: 'The PolicyPCR digest (SHA-256 session) of the set\'s values over the selection, hex.' })
  approvedPolicy!: string;

  @ApiProperty({ description: 'TPMT_SIGNATURE (RSASSA-SHA256) over SHA-256(approvedPolicy ‖ policyRef), base64: TPM2_VerifySignature\'s input.' })
  signature!: string;
}

export class ApprovalsResponseDto implements ApprovalsResponse {
  @ApiProperty()
  group!: string;

  @ApiProperty({ type: 'integer', minimum: 1, description: 'The group\'s current approval epoch; envelopes sealed under an older one need re-wrapping.' })
  epoch!: number;

  @ApiProperty({ description: 'SHA-256 policyRef of (group, epoch), hex.' })
  policyRef!: string;

  @ApiProperty({ description: 'The PCR bank PolicyPCR selects (sha256 when the group has no policy).' })
  bank!: string;

  @ApiProperty({ type: 'integer', isArray: true, description: 'The PCR indexes PolicyPCR selects (none when the group has no policy).' })
  pcrs!: number[];

  @ApiProperty({ description: 'The control plane\'s approval signing key, TPM2B_PUBLIC, base64: TPM2_LoadExternal into TPM_RH_OWNER.' })
  signingKeyPublic!: string;

  @ApiProperty({ description: 'Its Name, hex: what the sealed objects\' PolicyAuthorize binds.' })
  signingKeyName!: string;

  @ApiProperty({ type: PcrApprovalDto, isArray: true, description: 'One per allowed set of the group\'s policy, in the current epoch; empty without a policy.' })
  approvals!: PcrApprovalDto[];
}
