import { plainToInstance } from 'class-transformer';
import { type ValidationError, validateSync } from 'class-validator';
import { JOB_CATALOG, type JobName, type JobPayload } from './job-catalog';
import { InvalidJobPayloadError } from './invalid-job-payload.error';

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => `${prefix}${m}`),
    ...flatten(e.children ?? [], `${prefix}${e.property}.`),
  ]);
}

/**
 * Validates a job payload like an HTTP body, both when it is enqueued and when a worker takes it
 * from Redis (whatever is in Redis is outside input). Unknown properties are refused.
 */
export function validateJobPayload<N extends JobName>(name: N, data: unknown): JobPayload<N> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidJobPayloadError(name, ['payload must be an object']);
  }
  const instance = plainToInstance(JOB_CATALOG[name].payload as new () => object, data) as JobPayload<N>;
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0) {
    throw new InvalidJobPayloadError(name, flatten(errors));
  }
  return instance;
}
