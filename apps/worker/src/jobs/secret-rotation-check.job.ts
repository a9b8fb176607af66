import { Injectable } from '@nestjs/common';
import { SecretRotationSchedule } from '@rackseal/deliveries';
import { JobHandler } from '@rackseal/jobs';

/** The rotation check's scheduled run (libs/deliveries SecretRotationSchedule): one `secret.rotate` job per due secret. */
@Injectable()
export class SecretRotationCheckJob {
  constructor(private readonly schedule: SecretRotationSchedule) {}

  @JobHandler('secret.rotation-check')
  async run(): Promise<{ due: number }> {
    return { due: await this.schedule.check() };
  }
}
