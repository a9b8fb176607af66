import { ApiProperty } from '@nestjs/swagger';
import type { GroupApproval, GroupApprovals } from '@rackseal/api-contracts';

export class GroupApprovalDto implements GroupApproval<Date> {
  @ApiProperty({ description: 'the allowed set\'s label' }) label: string;
  @ApiProperty({ description: 'the PolicyPCR digest (SHA-256 session) of the set\'s values, hex' }) approvedPolicy: string;
  @ApiProperty({ description: 'TPMT_SIGNATURE (RSASSA-SHA256) over SHA-256(approvedPolicy ‖ policyRef), base64' }) signature: string;
  @ApiProperty() signedAt: Date;
}

export class GroupApprovalsDto implements GroupApprovals<Date> {
  @ApiProperty() group: string;
  @ApiProperty({ type: 'integer', minimum: 1, description: 'the group\'s current approval epoch: bumped when a policy change withdraws an approved state' }) epoch: number;
  @ApiProperty({ description: 'SHA-256 policyRef of (group, epoch), hex' }) policyRef: string;
  @ApiProperty({ description: 'the policy\'s bank (sha256 without a policy)' }) bank: string;
  @ApiProperty({ type: 'integer', isArray: true, description: 'the policy\'s PCRs (none without a policy)' }) pcrs: number[];
  @ApiProperty({ description: 'the approval signing key\'s TPM2B_PUBLIC, base64' }) signingKeyPublic: string;
  @ApiProperty({ description: 'its Name, hex' }) signingKeyName: string;
  @ApiProperty({ type: GroupApprovalDto, isArray: true, description: 'one per allowed set, current epoch only' }) approvals: GroupApprovalDto[];
}
