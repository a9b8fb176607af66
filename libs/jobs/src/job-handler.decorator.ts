import { SetMetadata } from '@nestjs/common';
import type { JobName } from './job-catalog';

export const JOB_HANDLER_METADATA = 'rackseal:job-handler';

/** Marks the method that runs a job. Exactly one per job name, checked when the worker boots. */
export const JobHandler = (name: JobName): MethodDecorator => SetMetadata(JOB_HANDLER_METADATA, name);
