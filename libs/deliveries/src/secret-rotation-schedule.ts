import { Injectable, Logger } from '@nestjs/common';
import { JobQueue, ROTATION_JOBS } from '@rackseal/jobs';
import { Clock } from '@rackseal/platform';
import { Secrets, SecretsRepository } from '@rackseal/secrets';

/** Due secrets read per page. */
const PAGE = 500;

/** Who makes the scheduled versions. */
export const ROTATION_SCHEDULE_ACTOR = 'system:rotation-schedule';

/**
 * Rotation on schedule (issue 14 item 5). The `secret.rotation-check` job (one BullMQ job scheduler,
 * however many workers) reads from PostgreSQL every secret whose latest version is due — a
 * certificate within `renewBeforeDays` of its end, a disk key older than `rotateEveryDays` — and adds
 * one `secret.rotate` job per (secret, latest version): two checks that saw the same version add one
 * job. The job makes the next version only while that version is still the latest
 * (`Secrets.rotateIfLatest`, under the secret's row lock), so a job run twice, or a check racing an
 * operator's rotate, makes one version. The new version's deliveries are planned in its transaction.
 */
@Injectable()
export class SecretRotationSchedule {
  private readonly logger = new Logger('SecretRotationSchedule');

  constructor(
    private readonly repository: SecretsRepository,
    private readonly secrets: Secrets,
    private readonly jobs: JobQueue,
    private readonly clock: Clock,
  ) {}

  /** Adds the job of every due secret; answers how many. */
  async check(): Promise<number> {
    const now = this.clock.now();
    let due = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.repository.dueForRotation(now, after, PAGE);
      await this.jobs.enqueueMany(
        ROTATION_JOBS.rotate,
        page.map((d) => ({ secretId: d.secretId, fromVersion: d.latestVersion, reason: d.reason })),
      );
      due += page.length;
      if (page.length < PAGE) {
        break;
      }
      after = page[page.length - 1]!.name;
    }
    if (due > 0) {
      this.logger.log({ due }, 'secrets due for a new version');
    }
    return due;
  }

  /** One due secret's new version: its number, or undefined when `fromVersion` is no longer the latest (a no-op). */
  rotate(secretId: string, fromVersion: number, reason: 'renew-before' | 'rotate-every'): Promise<number | undefined> {
    return this.secrets.rotateIfLatest(secretId, fromVersion, 'scheduled', ROTATION_SCHEDULE_ACTOR, { reason });
  }
}
