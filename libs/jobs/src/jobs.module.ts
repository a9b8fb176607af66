import { Global, Module } from '@nestjs/common';
import { JobQueue } from './job-queue';

/** Job producers, shared by every process. Consumers are registered by the worker only. */
@Global()
@Module({ providers: [JobQueue], exports: [JobQueue] })
export class JobsModule {}
