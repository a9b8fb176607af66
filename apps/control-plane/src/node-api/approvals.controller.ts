import { Controller, Get } from '@nestjs/common';
import { ApiConflictResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { PcrApprovals } from '@rackseal/attestation';
import { APPROVALS_ROUTE, type ApprovalsResponse, nodeApiPath } from '@rackseal/node-api-contracts';
import { NodeAuthenticated, NodeCallerOf } from '../auth/auth.decorators';
import type { NodeCaller } from '../auth/node-request.guard';
import { ApprovalsResponseDto } from './approvals.dto';

/**
 * The PCR approvals of the calling machine's group (issue 13 item 5, docs/decisions.md "PCR
 * approvals (issue 13 item 5)"): what the agent proves its current PCR state with before unsealing
 * a `pcr-sealed` envelope. Signed with the node credential; the guard lets a quarantined machine's
 * credential through only so its refusal is audited (`approval.machine-quarantined`, audited
 * `pcr-approvals.refused`): a machine outside an approved state gets no approvals.
 */
@ApiTags('node: approvals')
@NodeAuthenticated({ quarantinedToo: true })
@Controller(nodeApiPath(APPROVALS_ROUTE))
export class NodeApprovalsController {
  constructor(private readonly approvals: PcrApprovals) {}

  @Get()
  @ApiOkResponse({ type: ApprovalsResponseDto, description: 'the signing key, the group\'s epoch and policyRef, and one signed approval per allowed set' })
  @ApiConflictResponse({ description: 'approval.machine-quarantined, approval.no-group (audited pcr-approvals.refused)' })
  approvalsOf(@NodeCallerOf() caller: NodeCaller): Promise<ApprovalsResponse> {
    return this.approvals.forMachine(caller.machine, caller.credentialId);
  }
}
