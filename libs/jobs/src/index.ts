export * from './invalid-job-payload.error';
export * from './job-catalog';
export * from './job-handler.decorator';
export * from './job-queue';
export * from './jobs.module';
export * from './payloads/audit-verify-chain.payload';
export * from './redis-connection';
export * from './validate-payload';
