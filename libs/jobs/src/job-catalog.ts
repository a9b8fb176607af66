import { AuditVerifyChainPayload } from './payloads/audit-verify-chain.payload';

export const QUEUES = ['maintenance'] as const;
export type QueueName = (typeof QUEUES)[number];

interface JobSpec<P> {
  readonly queue: QueueName;
  readonly payload: new () => P;
  /** The one place each job's id is decided: equal requests map to equal ids, so BullMQ dedups them. */
  readonly jobId: (payload: P) => string;
  readonly attempts: number;
}

/**
 * Every job rackseal runs. The worker refuses to boot unless each name here has exactly one
 * @JobHandler, so a job can never sit in a queue that nobody consumes.
 */
export const JOB_CATALOG = {
  'audit.verify-chain': {
    queue: 'maintenance',
    payload: AuditVerifyChainPayload,
    // BullMQ reserves ':' in ids; dots and dashes only.
    jobId: (p: AuditVerifyChainPayload) => `audit.verify-chain.${p.requestId}`,
    attempts: 3,
  } satisfies JobSpec<AuditVerifyChainPayload>,
} as const;

export type JobName = keyof typeof JOB_CATALOG;
export type JobPayload<N extends JobName> = InstanceType<(typeof JOB_CATALOG)[N]['payload']>;
export const JOB_NAMES = Object.keys(JOB_CATALOG) as JobName[];
