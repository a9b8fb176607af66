/** A job payload that fails validation: on enqueue it is a caller bug, in a worker it is never retried. */
export class InvalidJobPayloadError extends Error {
  constructor(
    readonly jobName: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid payload for job ${jobName}: ${problems.join('; ')}`);
    this.name = 'InvalidJobPayloadError';
  }
}
