import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import { type AuditVerifyChainPayload, JobHandler } from '@rackseal/jobs';

export interface AuditVerifyChainResult {
  readonly ok: boolean;
  readonly records: number;
}

/** Recomputes the audit tree and writes the verdict into the log itself, so checks are audited too. */
@Injectable()
export class AuditVerifyChainJob {
  constructor(private readonly audit: AuditLog) {}

  @JobHandler('audit.verify-chain')
  async run(payload: AuditVerifyChainPayload): Promise<AuditVerifyChainResult> {
    const verdict = await this.audit.verify();
    await this.audit.append({
      actor: 'system:worker',
      action: 'audit.chain-verified',
      subject: 'audit-log',
      outcome: verdict.ok ? 'success' : 'failure',
      details: verdict.ok
        ? { trigger: payload.trigger, records: verdict.records, rootHash: verdict.rootHash, checkpoints: verdict.checkpoints }
        : { trigger: payload.trigger, records: verdict.records, problem: { ...verdict.problem } },
    });
    return { ok: verdict.ok, records: verdict.records };
  }
}
