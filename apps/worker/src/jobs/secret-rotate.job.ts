import { Injectable } from '@nestjs/common';
import { SecretRotationSchedule } from '@rackseal/deliveries';
import { JobHandler, type SecretRotatePayload } from '@rackseal/jobs';

/** One due secret's new version, conditional on the version the check saw (a second run is a no-op). */
@Injectable()
export class SecretRotateJob {
  constructor(private readonly schedule: SecretRotationSchedule) {}

  @JobHandler('secret.rotate')
  async run(payload: SecretRotatePayload): Promise<{ version: number | null }> {
    return { version: (await this.schedule.rotate(payload.secretId, payload.fromVersion, payload.reason)) ?? null };
  }
}
