export * from './config.module';
export * from './config.schema';
export * from './load-config';
export * from './rackseal-config';
export * from './secret-bytes';
