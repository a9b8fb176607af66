import { AuditVerifyChainPayload } from './payloads/audit-verify-chain.payload';
import { DeliveryDeliverPayload, DeliveryReconcilePayload } from './payloads/delivery.payload';
import { SecretRotatePayload, SecretRotationCheckPayload } from './payloads/secret-rotation.payload';

export const QUEUES = ['maintenance', 'deliveries'] as const;
export type QueueName = (typeof QUEUES)[number];

interface JobSpec<P> {
  readonly queue: QueueName;
  readonly payload: new () => P;
  /** The one place each job's id is decided: equal requests map to equal ids, so BullMQ dedups them. */
  readonly jobId: (payload: P) => string;
  readonly attempts: number;
  /** First retry delay in ms, doubled at each further attempt (BullMQ exponential backoff); 1000 when absent. */
  readonly backoffMs?: number;
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
  // One job per delivery round: a second enqueue of the same round (the relay and the reconciler
  // both may) is the same job. Eight attempts, 2 s doubling: about 4 minutes of retries (2+4+…+128 s)
  // before the delivery is `failed`, long enough for a restarted PostgreSQL or a re-attestation.
  'delivery.deliver': {
    queue: 'deliveries',
    payload: DeliveryDeliverPayload,
    jobId: (p: DeliveryDeliverPayload) => `delivery.deliver.${p.deliveryId}.${p.generation}`,
    attempts: 8,
    backoffMs: 2000,
  } satisfies JobSpec<DeliveryDeliverPayload>,
  // A disk key pre-wrapped to an imported machine's inventory EK (issue 14 item 6): one job per
  // round, like delivery.deliver, with the same retries.
  'delivery.prewrap': {
    queue: 'deliveries',
    payload: DeliveryDeliverPayload,
    jobId: (p: DeliveryDeliverPayload) => `delivery.prewrap.${p.deliveryId}.${p.generation}`,
    attempts: 8,
    backoffMs: 2000,
  } satisfies JobSpec<DeliveryDeliverPayload>,
  // Run by a job scheduler (JobQueue.schedule), which names its own jobs; the id is for a manual run.
  'delivery.reconcile': {
    queue: 'deliveries',
    payload: DeliveryReconcilePayload,
    jobId: () => 'delivery.reconcile.manual',
    attempts: 1,
  } satisfies JobSpec<DeliveryReconcilePayload>,
  // Run by a job scheduler (SECRET_ROTATION_CHECK_INTERVAL_MS): finds the secrets due for a new version.
  'secret.rotation-check': {
    queue: 'deliveries',
    payload: SecretRotationCheckPayload,
    jobId: () => 'secret.rotation-check.manual',
    attempts: 1,
  } satisfies JobSpec<SecretRotationCheckPayload>,
  // One job per (secret, version it rotates from): two checks that both saw version N due add one
  // job, and the job itself makes version N+1 only while N is the latest (a second run is a no-op).
  'secret.rotate': {
    queue: 'deliveries',
    payload: SecretRotatePayload,
    jobId: (p: SecretRotatePayload) => `secret.rotate.${p.secretId}.${p.fromVersion}`,
    attempts: 5,
    backoffMs: 5000,
  } satisfies JobSpec<SecretRotatePayload>,
} as const;

export type JobName = keyof typeof JOB_CATALOG;

/** The deliveries' jobs by role, for libs/deliveries (which enqueues and schedules them). */
export const DELIVERY_JOBS = { deliver: 'delivery.deliver', prewrap: 'delivery.prewrap', reconcile: 'delivery.reconcile' } as const satisfies Record<string, JobName>;
/** The scheduled rotations' jobs by role. */
export const ROTATION_JOBS = { check: 'secret.rotation-check', rotate: 'secret.rotate' } as const satisfies Record<string, JobName>;
export type JobPayload<N extends JobName> = InstanceType<(typeof JOB_CATALOG)[N]['payload']>;
export const JOB_NAMES = Object.keys(JOB_CATALOG) as JobName[];
