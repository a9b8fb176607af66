import { Controller, Get, Query } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { type AuditChainVerification, AuditRecordEntity, verifyAuditChain } from '@rackseal/audit';
import { DataSource, MoreThan, type Repository } from 'typeorm';
import { RequireScope } from '../auth/auth.decorators';
import { AuditQueryDto, AuditRecordDto } from './audit-query.dto';

/** Read access to the audit chain (`rackseal audit tail`), and an on-demand integrity check. */
@ApiTags('audit')
@ApiBearerAuth()
@RequireScope('audit:read')
@Controller('v1/audit')
export class AuditController {
  constructor(
    @InjectRepository(AuditRecordEntity) private readonly records: Repository<AuditRecordEntity>,
    private readonly dataSource: DataSource,
  ) {}

  @Get()
  @ApiOkResponse({ type: AuditRecordDto, isArray: true })
  async list(@Query() query: AuditQueryDto): Promise<AuditRecordDto[]> {
    const rows = await this.records.find({
      where: { seq: MoreThan(query.after ?? 0) },
      order: { seq: 'ASC' },
      take: query.limit ?? 100,
    });
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
    return verifyAuditChain(this.dataSource);
  }
}
