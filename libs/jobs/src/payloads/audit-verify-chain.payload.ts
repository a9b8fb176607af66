import { IsIn, IsUUID } from 'class-validator';

export const VERIFY_TRIGGERS = ['schedule', 'operator', 'boot'] as const;

/** Walk the audit chain and record the verdict as an audit record of its own. */
export class AuditVerifyChainPayload {
  /** Makes the job id: enqueueing the same request twice runs it once. */
  @IsUUID()
  requestId: string;

  @IsIn(VERIFY_TRIGGERS)
  trigger: (typeof VERIFY_TRIGGERS)[number];
}
