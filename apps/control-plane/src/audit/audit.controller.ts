import { type AuditRecordView, type AuditVerification, DEFAULT_PAGE_SIZE, parseInstant } from '@rackseal/api-contracts';
import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AuditLog, type ListedAuditRecord, type StoredCheckpoint } from '@rackseal/audit';
import { RequireScope } from '../auth/auth.decorators';
import {
  AuditCheckpointDto,
  AuditConsistencyProofDto,
  AuditConsistencyQueryDto,
  AuditInclusionProofDto,
  AuditProofQueryDto,
  AuditPublicKeyDto,
  AuditQueryDto,
  AuditRecordDto,
  AuditSeqParamDto,
} from './audit-query.dto';

/**
 * Read access to the audit transparency log: records, signed checkpoints, the signing keys, inclusion
 * and consistency proofs (RFC 9162 §2.1.3, §2.1.4), and an on-demand recomputation of the tree.
 */
@ApiTags('audit')
@ApiBearerAuth()
@RequireScope('audit:read')
@Controller('v1/audit')
export class AuditController {
  constructor(private readonly audit: AuditLog) {}

  @Get()
  @ApiOkResponse({ type: AuditRecordDto, isArray: true })
  async list(@Query() query: AuditQueryDto): Promise<AuditRecordView[]> {
    const rows = await this.audit.list({
      after: query.after,
      before: query.before,
      newest: query.order === 'newest',
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
      actor: query.actor,
      action: query.action,
      subject: query.subject,
      // Validated by the DTO (IsInstant), so defined whenever given.
      since: query.since === undefined ? undefined : parseInstant(query.since),
      until: query.until === undefined ? undefined : parseInstant(query.until),
    });
    return rows.map(recordView);
  }

  @Get('verify')
  verify(): Promise<AuditVerification> {
    return this.audit.verify();
  }

  @Get('checkpoint')
  @ApiOkResponse({ type: AuditCheckpointDto })
  @ApiNotFoundResponse({ description: 'audit.no-checkpoint: the sequencer has not signed one yet' })
  async checkpoint(): Promise<AuditCheckpointDto> {
    return this.checkpointView(await this.audit.latestCheckpoint());
  }

  @Get('public-keys')
  @ApiOkResponse({ type: AuditPublicKeyDto, isArray: true })
  async publicKeys(): Promise<AuditPublicKeyDto[]> {
    return (await this.audit.publicKeys()).map((k) => ({
      keyId: k.keyId,
      name: k.name,
      publicKey: k.publicKey.toString('base64'),
      verifierKey: k.verifierKey,
      createdAt: k.createdAt.toISOString(),
    }));
  }

  @Get('records/:seq/proof')
  @ApiOkResponse({ type: AuditInclusionProofDto })
  @ApiBadRequestResponse({ description: 'seq or size is not a whole number in range' })
  @ApiNotFoundResponse({ description: 'audit.not-sequenced or audit.no-checkpoint (no checkpoint of that size)' })
  async inclusion(@Param() params: AuditSeqParamDto, @Query() query: AuditProofQueryDto): Promise<AuditInclusionProofDto> {
    const { proof, record } = await this.audit.inclusionProof(params.seq, query.size);
    return {
      record: recordView(record),
      treeSize: proof.treeSize,
      proof: proof.proof.map((h) => h.toString('hex')),
      checkpoint: this.checkpointView(proof.checkpoint),
    };
  }

  @Get('consistency')
  @ApiOkResponse({ type: AuditConsistencyProofDto })
  @ApiBadRequestResponse({ description: 'audit.invalid-size, or from/to not whole numbers in range' })
  @ApiNotFoundResponse({ description: 'audit.no-checkpoint (no checkpoint of that size)' })
  async consistency(@Query() query: AuditConsistencyQueryDto): Promise<AuditConsistencyProofDto> {
    const proof = await this.audit.consistencyProof(query.from, query.to);
    return { from: proof.from, to: proof.to, proof: proof.proof.map((h) => h.toString('hex')), checkpoint: this.checkpointView(proof.checkpoint) };
  }

  private checkpointView(c: StoredCheckpoint): AuditCheckpointDto {
    return {
      origin: c.origin,
      treeSize: c.treeSize,
      rootHash: c.rootHash.toString('hex'),
      signedAt: c.signedAt.toISOString(),
      keyId: c.keyId,
      note: c.note,
    };
  }
}

function recordView(r: ListedAuditRecord): AuditRecordView {
  return {
    id: r.id,
    seq: r.seq,
    // The exact text the leaf covers (the Date's ISO text for every record AuditLog writes); a value
    // no writer stores (±infinity, written around the application) is shown as PostgreSQL gave it.
    recordedAt: r.recordedAtText ?? String(r.recordedAt),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    outcome: r.outcome,
    details: r.details,
    leafHash: r.leafHash === null ? null : r.leafHash.toString('hex'),
  };
}
