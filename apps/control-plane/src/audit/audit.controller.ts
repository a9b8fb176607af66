import { type AuditChainVerification, type AuditRecordView, DEFAULT_PAGE_SIZE } from '@rackseal/api-contracts';
import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuditLog } from '@rackseal/audit';
import { RequireScope } from '../auth/auth.decorators';
import { AuditQueryDto, AuditRecordDto } from './audit-query.dto';

/** Read access to the audit chain (`rackseal audit tail`), and an on-demand integrity check. */
@ApiTags('audit')
@ApiBearerAuth()
@RequireScope('audit:read')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditLog) {}

  @Get()
  @ApiOkResponse({ type: AuditRecordDto, isArray: true })
  async list(@Query() query: AuditQueryDto): Promise<AuditRecordView[]> {
    const rows = await this.audit.list({ after: query.after, limit: query.limit ?? DEFAULT_PAGE_SIZE });
    return rows.map((r) => ({
      seq: r.seq,
      recordedAt: r.recordedAt.toISOString(),
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      outcome: r.outcome,
      details: r.details,
      prevHash: r.prevHash.toString('hex'),
      hash: r.hash.toString('hex'),
    }));
  }

  @Get('verify')
  verify(): Promise<AuditChainVerification> {
    return this.audit.verifyChain();
  }
}
